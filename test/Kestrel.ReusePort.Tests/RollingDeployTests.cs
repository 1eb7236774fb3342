using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// Rolling deploys of the sample on one port, as an operator does them: start the new instance on the same --urls,
/// wait until it serves, SIGTERM the old one. Real child processes, real load, nothing may fail.
/// </summary>
public class RollingDeployTests(ITestOutputHelper output)
{
    private const int Restarts = 3;
    private static readonly TimeSpan s_exitTimeout = TimeSpan.FromSeconds(30);
    private static readonly string[] s_arguments = ["--ReusePort:ListenerCount=2"];

    [Theory]
    [InlineData(LoadMode.Churn)]
    [InlineData(LoadMode.KeepAlive)]
    public async Task RollingRestartsUnderLoadLoseNothing(LoadMode mode)
    {
        var port = PortAllocator.GetFreePort();
        var instances = new List<SampleProcess>();
        try
        {
            var (result, survivor) = await RollingRestart.RunAsync(port, s_arguments, Restarts, mode, instances);
            output.WriteLine($"{mode}, {Restarts} rolling restarts: {result}");
            Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());
            Assert.True(result.RequestsByPid.Count >= 2, $"The load reached only {result.RequestsByPid.Count} instance(s): {result}");

            // Bounded: whatever the number of deploys, the port has ListenerCount sockets, all held by the survivor.
            var description = ListeningSockets.Describe(port, survivor.Pid);
            Assert.True(ListeningSockets.OnPort(port).Count == 2, description);
            Assert.True(ListeningSockets.HeldBy(survivor.Pid, port).Count == 2, description);
        }
        finally
        {
            foreach (var instance in instances)
            {
                instance.Dispose();
            }
        }
    }

    [Fact]
    public async Task ConnectionsQueuedWhenTheOldInstanceIsKilledAreServedByTheNewOne()
    {
        const int Connections = 24;
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");
        using var next = SampleProcess.Start($"http://127.0.0.1:{port}", s_arguments, name: "new");
        await next.WaitUntilStartedAsync();
        Assert.True(next.HasEvent(1, e => e["InheritedCount"] == "2"), next.Output);

        // With both instances frozen, new connections wait in the sockets' accept queues, requests sent.
        await old.FreezeAsync();
        await next.FreezeAsync();
        var clients = new List<RawHttpClient>();
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                var client = await RawHttpClient.ConnectAsync(endPoint);
                clients.Add(client);
                await client.SendGetAsync("/", keepAlive: false);
            }

            // kill -9 closes every descriptor the old instance had, its copies of the listening sockets among them.
            old.Kill();
            await old.WaitForExitAsync(s_exitTimeout);
            next.Thaw();

            // The sockets, and the connections queued on them, live on in the new instance: every request is answered.
            foreach (var client in clients)
            {
                var response = await client.ReadResponseAsync(TimeSpan.FromSeconds(20));
                Assert.Equal(200, response.StatusCode);
                Assert.Equal(next.Pid, response.RequirePid());
            }
        }
        finally
        {
            next.Thaw();
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task DrainingInstanceAnswersKeepAliveClientsWithConnectionClose()
    {
        const int Clients = 4;
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        string[] arguments = [.. s_arguments, "--ReusePort:DrainTimeout=00:00:20"];
        using var old = await SampleProcess.StartRunningAsync(port, arguments, "old");

        var clients = new List<RawHttpClient>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var client = await RawHttpClient.ConnectAsync(endPoint);
                clients.Add(client);
                var first = await client.GetAsync("/", keepAlive: true);
                Assert.Equal(old.Pid, first.RequirePid());
                Assert.False(first.ConnectionClose);
            }

            using var next = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "new");
            await next.WaitUntilStartedAsync();

            old.SignalTerm();
            await old.WaitForEventAsync(12, e => e["ListenerCount"] == "1", s_exitTimeout);

            // Idle keep-alive connections are still open, and a request on one is answered, with Connection: close,
            // instead of racing a server-side close.
            foreach (var client in clients)
            {
                var response = await client.GetAsync("/", keepAlive: true);
                Assert.Equal(200, response.StatusCode);
                Assert.Equal(old.Pid, response.RequirePid());
                Assert.True(response.ConnectionClose, "A draining instance must answer Connection: close.");
            }

            // The clients' next connections reach the new instance; the old one exits once its clients have left,
            // well before the 20 s window.
            var fresh = await RawHttpClient.GetAsync(endPoint);
            Assert.Equal(next.Pid, fresh.RequirePid());
            foreach (var client in clients)
            {
                client.Dispose();
            }

            Assert.Equal(0, await old.WaitForExitAsync(s_exitTimeout));
            Assert.True(old.HasEvent(13), old.Output);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task ConcurrentSuccessorsShareTheSocketsAndTheRendezvousPassesOn()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");

        using var second = SampleProcess.Start(urls, s_arguments, name: "second");
        using var third = SampleProcess.Start(urls, s_arguments, name: "third");
        await Task.WhenAll(second.WaitUntilStartedAsync(), third.WaitUntilStartedAsync());
        foreach (var successor in new[] { second, third })
        {
            Assert.True(successor.HasEvent(6, e => e.Number("ProcessId") == old.Pid), successor.Output);
        }

        old.SignalTerm();
        Assert.Equal(0, await old.WaitForExitAsync(s_exitTimeout));

        // Still the same 2 sockets, each held by both successors, and both answer.
        var description = ListeningSockets.Describe(port, second.Pid, third.Pid);
        Assert.True(ListeningSockets.OnPort(port).Count == 2, description);
        Assert.True(ListeningSockets.HeldBy(second.Pid, port).Count == 2 && ListeningSockets.HeldBy(third.Pid, port).Count == 2, description);
        var pids = new HashSet<int>();
        await Eventually.UntilAsync(
            async () =>
            {
                pids.Add((await RawHttpClient.GetAsync(endPoint)).RequirePid());
                return pids.SetEquals([second.Pid, third.Pid]);
            },
            TimeSpan.FromSeconds(30), "both successors to answer");

        // One of them took the rendezvous over: a next instance gets the same sockets from it.
        await Eventually.UntilAsync(
            () => second.HasOutput(l => Rendezvous.IsOfferLine(l, $"127.0.0.1:{port}")) || third.HasOutput(l => Rendezvous.IsOfferLine(l, $"127.0.0.1:{port}")),
            TimeSpan.FromSeconds(15), "a successor to offer the sockets");
        using var fourth = SampleProcess.Start(urls, s_arguments, name: "fourth");
        await fourth.WaitUntilStartedAsync();
        Assert.True(fourth.HasEvent(6, e => e["SocketCount"] == "2"), fourth.Output);
        Assert.True(ListeningSockets.OnPort(port).Count == 2, ListeningSockets.Describe(port, second.Pid, third.Pid, fourth.Pid));
    }

    [Fact]
    public async Task AfterTheOwnerIsKilledANewInstanceStartsAtOnceWithItsOwnSockets()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using (var crashed = SampleProcess.Start(urls, s_arguments, name: "crashed"))
        {
            await crashed.WaitUntilServingAsync(endPoint);
            await Rendezvous.WaitUntilOfferedAsync(crashed, $"127.0.0.1:{port}");
            crashed.Kill();
            await crashed.WaitForExitAsync(s_exitTimeout);
        }

        // kill -9 leaves the socket file behind; nobody listens on it, and its lock died with the process.
        if (Rendezvous.DefaultDirectory is { } directory)
        {
            Assert.True(File.Exists(Rendezvous.SocketFile(directory, $"127.0.0.1:{port}")), "kill -9 leaves the rendezvous socket file");
        }

        // A handoff timeout longer than the start limit: waiting on anything stale would fail this test.
        using var next = SampleProcess.Start(urls, [.. s_arguments, "--ReusePort:HandoffTimeout=00:02:00"], name: "next");
        await next.WaitUntilServingAsync(endPoint);
        Assert.True(next.HasEvent(1, e => (e["SocketCount"], e["InheritedCount"]) == ("2", "0")), next.Output);
        Assert.Equal(next.Pid, (await RawHttpClient.GetAsync(endPoint)).RequirePid());

        // It replaced the stale place, and a third instance takes the sockets over from it there.
        await Rendezvous.WaitUntilOfferedAsync(next, $"127.0.0.1:{port}");
        using var third = SampleProcess.Start(urls, [.. s_arguments, "--ReusePort:HandoffTimeout=00:02:00"], name: "third");
        await third.WaitUntilStartedAsync();
        Assert.True(third.HasEvent(6, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", $"127.0.0.1:{port}", next.Pid)), third.Output);
    }

    [Fact]
    public async Task AHungOwnerDelaysANewInstanceOnlyForTheHandoffTimeout()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var hung = await SampleProcess.StartRunningAsync(port, s_arguments, "hung");
        await hung.FreezeAsync();
        try
        {
            using var next = SampleProcess.Start(urls, [.. s_arguments, "--ReusePort:HandoffTimeout=00:00:02"], name: "next");
            await next.WaitUntilStartedAsync();
            Assert.True(next.HasEvent(7, e => e["EndPoint"] == $"127.0.0.1:{port}"), next.Output);
            Assert.True(next.HasEvent(1, e => (e["SocketCount"], e["InheritedCount"]) == ("2", "0")), next.Output);
            Assert.True(ListeningSockets.HeldBy(next.Pid, port).Count == 2, ListeningSockets.Describe(port, hung.Pid, next.Pid));

            // Once the hung instance is gone, the new one serves everything and offers its sockets in turn.
            hung.Kill();
            await hung.WaitForExitAsync(s_exitTimeout);
            await Rendezvous.WaitUntilOfferedAsync(next, $"127.0.0.1:{port}");
            var responses = await RawHttpClient.GetManyAsync(endPoint, 50);
            Assert.All(responses, r => Assert.Equal(next.Pid, r.RequirePid()));

            using var third = SampleProcess.Start(urls, s_arguments, name: "third");
            await third.WaitUntilStartedAsync();
            Assert.True(third.HasEvent(6, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", $"127.0.0.1:{port}", next.Pid)), third.Output);
        }
        finally
        {
            hung.Thaw();
        }
    }

    [Fact]
    public async Task ASuccessorKilledMidStartLeavesTheOldInstanceServing()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");

        using (var crashing = SampleProcess.Start(urls, s_arguments, name: "crashing"))
        {
            await crashing.WaitForEventAsync(6, e => e["SocketCount"] == "2", SampleProcess.StartTimeout);
            crashing.Kill();
            await crashing.WaitForExitAsync(s_exitTimeout);
        }

        var responses = await RawHttpClient.GetManyAsync(endPoint, 50);
        Assert.All(responses, r => Assert.Equal(old.Pid, r.RequirePid()));
        Assert.True(ListeningSockets.HeldBy(old.Pid, port).Count == 2, ListeningSockets.Describe(port, old.Pid));

        using var next = SampleProcess.Start(urls, s_arguments, name: "next");
        await next.WaitUntilStartedAsync();
        Assert.True(next.HasEvent(6, e => e.Number("ProcessId") == old.Pid), next.Output);
    }

    [Fact]
    public async Task StartupLogsWhatTcpMigrateRequestMeans()
    {
        var value = File.ReadAllText("/proc/sys/net/ipv4/tcp_migrate_req").Trim();
        var port = PortAllocator.GetFreePort();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", s_arguments);
        await app.WaitUntilStartedAsync();
        Assert.Equal(value, Assert.Single(app.Events(5))["Value"]);
    }
}
