using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// The handoff rendezvous lives where only the service's user can create it: whatever a process of another user binds,
/// creates, plants or holds open in places every user can write costs a deploy nothing; a stale socket file after
/// kill -9 is replaced safely, even by two instances at once; instances in different PID and mount namespaces still
/// meet, and a user with no directory of its own still hands over.
/// </summary>
public class RendezvousSecurityTests(ITestOutputHelper output)
{
    private const int Restarts = 3;
    private const int SeparateUserId = 40_000;
    private static readonly TimeSpan s_exitTimeout = TimeSpan.FromSeconds(40);

    // Any wait on a squatter or on a stale file would show as a start slower than this allows.
    private static readonly string[] s_arguments = ["--ReusePort:ListenerCount=2", "--ReusePort:HandoffTimeout=00:02:00"];

    [RootTheory(RequiresPerl = true)]
    [InlineData(LoadMode.Churn)]
    [InlineData(LoadMode.KeepAlive)]
    public async Task SquattersOfAnotherUserCostRollingRestartsNothing(LoadMode mode)
    {
        var port = PortAllocator.GetFreePort();
        var endpoint = $"127.0.0.1:{port}";

        // User nobody gets there first: the abstract names of this and of the first release, a name that looks like a
        // discovered one, and directories, socket files, lock files and links under /tmp, /var/tmp and /dev/shm.
        using var squatter = PerlScripts.RunFile(PerlScripts.SquatterFile, [endpoint, Rendezvous.DefaultDirectory!], runAsNobody: true);
        var instances = new List<SampleProcess>();
        try
        {
            await squatter.WaitForOutputAsync(l => l == "squatting", TimeSpan.FromSeconds(20), "the squatter");
            output.WriteLine($"Squatted by nobody: {string.Join(", ", squatter.OutputLines.Where(l => l.StartsWith('/')))}");

            var (result, survivor) = await RollingRestart.RunAsync(port, s_arguments, Restarts, mode, instances);
            output.WriteLine($"{mode}, {Restarts} rolling restarts with squatters: {result}");
            Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());

            // No instance waited on, talked to or even noticed the squatters.
            foreach (var instance in instances)
            {
                Assert.False(instance.HasEvent(7) || instance.HasEvent(9));
            }

            Assert.True(ListeningSockets.HeldBy(survivor.Pid, port).Count == 2, ListeningSockets.Describe(port, survivor.Pid));
        }
        finally
        {
            foreach (var instance in instances)
            {
                instance.Dispose();
            }

            squatter.Dispose();
            RemoveSquattedPaths(squatter);
        }
    }

    [RootFact]
    public async Task AStaleSocketFileAfterKillIsReplacedSafelyByTwoInstancesStartingAtOnce()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        var endpoint = $"127.0.0.1:{port}";
        var socketFile = Rendezvous.SocketFile(Rendezvous.DefaultDirectory!, endpoint);
        using (var killed = SampleProcess.Start(urls, s_arguments, name: "killed"))
        {
            await killed.WaitUntilServingAsync(endPoint);
            await Rendezvous.WaitUntilOfferedAsync(killed, endpoint);
            killed.Kill();
            await killed.WaitForExitAsync(s_exitTimeout);
        }

        var stale = new FileInfo(socketFile);
        Assert.True(stale.Exists, "kill -9 leaves the socket file behind");
        var staleInode = LibC.Inode(socketFile);

        // Two instances find the stale file at the same moment: exactly one claims the place (under the lock) and opens
        // sockets, the other takes those sockets from it instead of opening more.
        using var first = SampleProcess.Start(urls, s_arguments, name: "first");
        using var second = SampleProcess.Start(urls, s_arguments, name: "second");
        await Task.WhenAll(first.WaitUntilStartedAsync(), second.WaitUntilStartedAsync());

        var pair = new[] { first, second };
        var owner = Assert.Single(pair, p => p.HasEvent(1, e => (e["EndPoint"], e["SocketCount"], e["InheritedCount"]) == (endpoint, "2", "0")));
        var taker = Assert.Single(pair, p => p != owner);
        Assert.True(taker.HasEvent(6, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", endpoint, owner.Pid)), taker.Output);
        Assert.True(ListeningSockets.OnPort(port).Count == 2, ListeningSockets.Describe(port, first.Pid, second.Pid));

        // The stale file was replaced by the owner's, never left missing, and belongs to a live instance now.
        Assert.True(File.Exists(socketFile));
        Assert.NotEqual(staleInode, LibC.Inode(socketFile));
        var responses = await RawHttpClient.GetManyAsync(endPoint, 40);
        Assert.All(responses, r => Assert.Contains(r.RequirePid(), new[] { first.Pid, second.Pid }));
    }

    [RootFact]
    public async Task AHandoffCrossesPidAndMountNamespacesThatShareTheRendezvousDirectory()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        var endpoint = $"127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old, host namespaces");

        // As a container with --network host and /run shared: a PID namespace and a mount namespace of its own, with
        // its own /proc, in which the old instance is not even visible.
        using var next = SampleProcess.Start(urls, s_arguments, name: "new, own PID and mount namespaces",
            wrapper: ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]);
        await next.WaitUntilStartedAsync();
        Assert.True(next.HasEvent(6, e => (e["SocketCount"], e["EndPoint"]) == ("2", endpoint)), next.Output);

        old.SignalTerm();
        Assert.Equal(0, await old.WaitForExitAsync(s_exitTimeout));
        var responses = await RawHttpClient.GetManyAsync(endPoint, 40);
        Assert.Single(responses.Select(r => r.RequirePid()).Distinct());
        Assert.Equal(2, ListeningSockets.OnPort(port).Count);
    }

    [RootFact(RequiresPerl = true)]
    public async Task InstancesOfAUserWithoutAPrivateDirectoryFindEachOtherThroughProc()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        var endpoint = $"127.0.0.1:{port}";

        // A plain service account: not root, no $RUNTIME_DIRECTORY, no $XDG_RUNTIME_DIR, no home of its own.
        var environment = new Dictionary<string, string?> { ["RUNTIME_DIRECTORY"] = null, ["XDG_RUNTIME_DIR"] = null };
        using var old = SampleProcess.Start(urls, s_arguments, environment, runAsUserId: SeparateUserId, name: "old");
        await old.WaitUntilServingAsync(endPoint);
        var offer = await old.WaitForEventAsync(10, e => e["EndPoint"] == endpoint, TimeSpan.FromSeconds(15));
        Assert.StartsWith($"@kestrel-reuseport/v2/{endpoint}/", offer["Place"], StringComparison.Ordinal);

        // Nobody binds look-alike names before the next instance starts: they are not the old instance's, so never asked.
        using var squatter = PerlScripts.Run(PerlScripts.Squatter,
            [$"@kestrel-reuseport/v2/{endpoint}/00000000000000000000000000000000", $"@kestrel-reuseport/v2/uid-{SeparateUserId}/{endpoint}"], runAsNobody: true);
        await squatter.WaitForOutputAsync(l => l == "squatting", TimeSpan.FromSeconds(20), "the squatter");

        using var next = SampleProcess.Start(urls, s_arguments, environment, runAsUserId: SeparateUserId, name: "new");
        await next.WaitUntilStartedAsync();
        Assert.True(next.HasEvent(6, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", endpoint, old.Pid)), next.Output);
        Assert.False(next.HasEvent(9), next.Output);

        old.SignalTerm();
        Assert.Equal(0, await old.WaitForExitAsync(s_exitTimeout));
        Assert.True(ListeningSockets.HeldBy(next.Pid, port).Count == 2, ListeningSockets.Describe(port, next.Pid));
    }

    /// <summary>Removes what the file squatter made, deepest first; only the paths it printed.</summary>
    private static void RemoveSquattedPaths(ChildProcess squatter)
    {
        foreach (var path in squatter.OutputLines.Where(l => l.StartsWith('/')).OrderByDescending(l => l.Length))
        {
            try
            {
                if (new FileInfo(path).LinkTarget is not null || File.Exists(path))
                {
                    File.Delete(path);
                }
                else if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
