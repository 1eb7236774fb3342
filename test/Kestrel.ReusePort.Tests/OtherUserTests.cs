using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// SO_REUSEPORT and the socket handoff are for processes of one user: a process of another user can neither join the
/// port nor get the sockets, and a process of another user squatting the (opt-in) abstract rendezvous is not believed.
/// </summary>
public class OtherUserTests
{
    private const int NobodyUserId = 65534;

    [RootFact]
    public async Task ProcessOfAnotherUserCannotJoinThePort()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var root = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=2"], "WebApp as root");

        using var nobody = SampleProcess.Start(urls, ["--ReusePort:ListenerCount=2"], runAsNobody: true);
        var exitCode = await nobody.WaitForExitAsync(SampleProcess.StartTimeout);

        Assert.True(exitCode != 0, $"The process of user nobody should fail to start.\n{nobody.Output}");
        var output = nobody.Output;
        Assert.Contains($"Failed to bind {endPoint} with SO_REUSEPORT", output, StringComparison.Ordinal);
        Assert.Contains("UseReusePortSockets()", output, StringComparison.Ordinal);
        Assert.Contains("same effective user", output, StringComparison.Ordinal);
        Assert.Contains($"run as user id {NobodyUserId}", output, StringComparison.Ordinal);

        // It got no socket from the root instance.
        Assert.False(nobody.HasEvent(6), output);
        Assert.False(root.HasEvent(8), root.Output);

        // The root instance still holds the port alone and serves.
        Assert.Equal(2, ListeningSockets.OnPort(port).Count);
        Assert.Equal(2, ListeningSockets.HeldBy(root.Pid, port).Count);
        var responses = await RawHttpClient.GetManyAsync(endPoint, 20);
        Assert.All(responses, r => Assert.Equal(root.Pid, r.Pid));
    }

    [RootFact(RequiresPerl = true)]
    public async Task AProcessOfAnotherUserCannotReachTheRendezvousDirectory()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var root = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=2"], "WebApp as root");
        var socketFile = Rendezvous.SocketFile(Rendezvous.DefaultDirectory!, $"127.0.0.1:{port}");
        Assert.True(File.Exists(socketFile), socketFile);

        // The directory is root's alone (0700): user nobody cannot even connect, let alone ask for the sockets.
        using (var nobody = PerlScripts.Run(PerlScripts.HandoffClient, [socketFile], runAsNobody: true))
        {
            await nobody.WaitForExitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains("connect: Permission denied", nobody.Output, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("Handed", root.Output, StringComparison.Ordinal);

        // The same client as root is answered with the sockets: the refusal above was the directory's doing.
        using (var sameUser = PerlScripts.Run(PerlScripts.HandoffClient, [socketFile], runAsNobody: false))
        {
            await sameUser.WaitForExitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains("read=8", sameUser.Output, StringComparison.Ordinal);
            await root.WaitForEventAsync(
                8, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", endPoint.ToString(), sameUser.Pid), TimeSpan.FromSeconds(10));
        }
    }

    [RootFact(RequiresPerl = true)]
    public async Task AbstractRendezvousHandsNoSocketToAProcessOfAnotherUser()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var root = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=2", "--ReusePort:AbstractRendezvous=true"], "WebApp as root");
        var name = $"@kestrel-reuseport/v2/uid-0/127.0.0.1:{port}";

        // Anyone may connect to an abstract name; the credential check refuses user nobody before a byte is answered.
        using (var nobody = PerlScripts.Run(PerlScripts.HandoffClient, [name], runAsNobody: true))
        {
            await nobody.WaitForExitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains($"connected uid={NobodyUserId}", nobody.Output, StringComparison.Ordinal);
            Assert.Contains("read=0", nobody.Output, StringComparison.Ordinal);
            await root.WaitForEventAsync(
                9, e => (e.Number("ProcessId"), e.Number("PeerUserId"), e["EndPoint"]) == (nobody.Pid, NobodyUserId, endPoint.ToString()), TimeSpan.FromSeconds(10));
        }

        Assert.False(root.HasEvent(8), root.Output);
        var responses = await RawHttpClient.GetManyAsync(endPoint, 20);
        Assert.All(responses, r => Assert.Equal(root.Pid, r.Pid));
    }

    [RootFact(RequiresPerl = true)]
    public async Task AbstractRendezvousSquattedByAnotherUserIsNotBelieved()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var name = $"@kestrel-reuseport/v2/uid-0/127.0.0.1:{port}";

        // User nobody takes root's abstract name for this endpoint before root's instance starts.
        using var squatter = PerlScripts.Run(PerlScripts.Squatter, [name], runAsNobody: true);
        await squatter.WaitForOutputAsync(l => l == "squatting", TimeSpan.FromSeconds(20), "the squatter to listen");

        using var root = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2", "--ReusePort:AbstractRendezvous=true"], name: "WebApp as root");
        await root.WaitUntilServingAsync(endPoint);

        // The starting instance checked who answered, sent it nothing and opened its own sockets.
        Assert.True(root.HasEvent(9, e => (e.Number("ProcessId"), e.Number("PeerUserId"), e["EndPoint"]) == (squatter.Pid, NobodyUserId, endPoint.ToString())), root.Output);
        Assert.True(root.HasEvent(1, e => (e["EndPoint"], e["SocketCount"], e["InheritedCount"]) == (endPoint.ToString(), "2", "0")), root.Output);

        // Nor does it offer its sockets under a name another user holds; it says so, as the risk of this opt-in.
        await root.WaitForEventAsync(
            11, e => (e.Number("ProcessId"), e.Number("PeerUserId")) == (squatter.Pid, NobodyUserId), TimeSpan.FromSeconds(20));
        Assert.Equal(2, ListeningSockets.HeldBy(root.Pid, port).Count);
        Assert.Empty(ListeningSockets.HeldBy(squatter.Pid, port));
    }
}
