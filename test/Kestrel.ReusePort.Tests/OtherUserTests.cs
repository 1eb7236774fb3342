using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// SO_REUSEPORT and the socket handoff are for processes of one user: a process of another user can neither join the
/// port nor get the sockets, and a process of another user squatting the rendezvous is not believed.
/// </summary>
public class OtherUserTests
{
    private const int NobodyUserId = 65534;

    // Asks the rendezvous named by $ARGV[0] for the sockets, like a starting instance, and says how many bytes came back.
    private const string PerlHandoffClient = """
        use strict; use Socket; $| = 1;
        socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
        connect($s, pack_sockaddr_un("\0" . $ARGV[0])) or die "connect: $!";
        print "connected uid=$>\n";
        defined(syswrite($s, "KRP1\x01\x00\x00\x00")) or die "write: $!";
        my $total = 0;
        while (1) { my $n = sysread($s, my $buf, 64); if (!defined $n) { print "error=$!\n"; last; } last if $n == 0; $total += $n; }
        print "read=$total\n";
        """;

    // Binds the rendezvous named by $ARGV[0] before the real instance does, and says how many bytes each peer sent.
    private const string PerlSquatter = """
        use strict; use Socket; $| = 1;
        socket(my $l, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
        bind($l, pack_sockaddr_un("\0" . $ARGV[0])) or die "bind: $!";
        listen($l, 16) or die "listen: $!";
        print "squatting uid=$>\n";
        while (accept(my $c, $l)) {
            my $total = 0;
            while (1) { my $n = sysread($c, my $buf, 64); last if !defined $n || $n == 0; $total += $n; }
            print "got=$total\n";
            close $c;
        }
        """;

    [RootFact]
    public async Task ProcessOfAnotherUserCannotJoinThePort()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var root = SampleProcess.Start(urls, ["--ReusePort:ListenerCount=2"], name: "WebApp as root");
        await root.WaitUntilServingAsync(endPoint);
        await Eventually.UntilAsync(() => AbstractUnixSockets.IsListening(AbstractUnixSockets.RendezvousName($"127.0.0.1:{port}", 0)),
            TimeSpan.FromSeconds(10), "the root instance's rendezvous");

        using var nobody = SampleProcess.Start(urls, ["--ReusePort:ListenerCount=2"], runAsNobody: true);
        var exitCode = await nobody.WaitForExitAsync(SampleProcess.StartTimeout);

        Assert.True(exitCode != 0, $"The process of user nobody should fail to start.\n{nobody.Output}");
        var output = nobody.Output;
        Assert.Contains($"Failed to bind {endPoint} with SO_REUSEPORT", output, StringComparison.Ordinal);
        Assert.Contains("UseReusePortSockets()", output, StringComparison.Ordinal);
        Assert.Contains("same effective user", output, StringComparison.Ordinal);
        Assert.Contains($"run as user id {NobodyUserId}", output, StringComparison.Ordinal);

        // It got no socket from the root instance: the rendezvous of its own user id is another name, and nobody answered.
        Assert.DoesNotContain("Took over", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Handed", root.Output, StringComparison.Ordinal);

        // The root instance still holds the port alone and serves.
        var sockets = ListeningSockets.OnPort(port);
        Assert.Equal(2, sockets.Count);
        Assert.Equal(2, ListeningSockets.HeldBy(root.Pid, port).Count);
        var responses = await RawHttpClient.GetManyAsync(endPoint, 20);
        Assert.All(responses, r => Assert.Equal(root.Pid, r.Pid));
    }

    [RootFact(RequiresPerl = true)]
    public async Task RendezvousHandsNoSocketToAProcessOfAnotherUser()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var root = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2"], name: "WebApp as root");
        await root.WaitUntilServingAsync(endPoint);
        var name = AbstractUnixSockets.RendezvousName($"127.0.0.1:{port}", 0);
        await Eventually.UntilAsync(() => AbstractUnixSockets.IsListening(name), TimeSpan.FromSeconds(10), $"the rendezvous {name}");

        // A process of user nobody asks root's rendezvous for the sockets: it is refused before a byte is answered.
        using (var nobody = RunPerl(PerlHandoffClient, name[1..], runAsNobody: true))
        {
            await nobody.WaitForExitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains($"connected uid={NobodyUserId}", nobody.Output, StringComparison.Ordinal);
            Assert.Contains("read=0", nobody.Output, StringComparison.Ordinal);
            await root.WaitForOutputAsync(
                l => l.Contains($"Refused a handoff peer (process {nobody.Pid}, user id {NobodyUserId}) on {endPoint}", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "the refusal");
        }

        Assert.DoesNotContain("Handed", root.Output, StringComparison.Ordinal);

        // The same client as root gets the reply (and the descriptors with it): the check above is the user id, not the client.
        using (var sameUser = RunPerl(PerlHandoffClient, name[1..], runAsNobody: false))
        {
            await sameUser.WaitForExitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains("read=8", sameUser.Output, StringComparison.Ordinal);
            await root.WaitForOutputAsync(
                l => l.Contains($"Handed 2 listening sockets of {endPoint} over to process {sameUser.Pid}.", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "the handoff to a process of the same user");
        }

        var responses = await RawHttpClient.GetManyAsync(endPoint, 20);
        Assert.All(responses, r => Assert.Equal(root.Pid, r.Pid));
    }

    [RootFact(RequiresPerl = true)]
    public async Task RendezvousSquattedByAnotherUserIsNotBelieved()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var name = AbstractUnixSockets.RendezvousName($"127.0.0.1:{port}", 0);

        // User nobody takes root's rendezvous name for this endpoint before root's instance starts.
        using var squatter = RunPerl(PerlSquatter, name[1..], runAsNobody: true);
        await squatter.WaitForOutputAsync(l => l == $"squatting uid={NobodyUserId}", TimeSpan.FromSeconds(20), "the squatter to listen");

        using var root = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2"], name: "WebApp as root");
        await root.WaitUntilServingAsync(endPoint);

        // The starting instance checked who answered, sent it nothing and opened its own sockets.
        Assert.True(root.HasOutput(l => l.Contains($"Refused a handoff peer (process {squatter.Pid}, user id {NobodyUserId}) on {endPoint}", StringComparison.Ordinal)), root.Output);
        Assert.True(root.HasOutput(l => l.Contains($"the rendezvous is held by user id {NobodyUserId}", StringComparison.Ordinal)), root.Output);
        Assert.True(root.HasOutput(l => l.Contains($"Listening on {endPoint} with 2 SO_REUSEPORT sockets (0 taken over from a running instance).", StringComparison.Ordinal)), root.Output);
        await squatter.WaitForOutputAsync(l => l.StartsWith("got=", StringComparison.Ordinal), TimeSpan.FromSeconds(20), "the refused connection to end");
        Assert.DoesNotContain(squatter.OutputLines, l => l.StartsWith("got=", StringComparison.Ordinal) && l != "got=0");

        // Nor does it offer its sockets under a name another user holds; it says so.
        await root.WaitForOutputAsync(
            l => l.Contains($"is held by process {squatter.Pid} of user id {NobodyUserId}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), "the squatted-rendezvous warning");

        Assert.Equal(2, ListeningSockets.HeldBy(root.Pid, port).Count);
        Assert.Empty(ListeningSockets.HeldBy(squatter.Pid, port));
        var responses = await RawHttpClient.GetManyAsync(endPoint, 20);
        Assert.All(responses, r => Assert.Equal(root.Pid, r.Pid));
    }

    private static ChildProcess RunPerl(string script, string argument, bool runAsNobody) => ChildProcess.Start(new ChildProcessStartInfo
    {
        FileName = "/usr/bin/perl",
        Arguments = ["-e", script, argument],
        WorkingDirectory = Path.GetTempPath(),
        RunAsNobody = runAsNobody,
        Name = runAsNobody ? "perl as nobody" : "perl as root",
    });
}
