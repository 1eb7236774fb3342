using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// With <see cref="ReusePortSocketTransportOptions.StopPredecessor"/>, a deploy is "start the new version": once warm
/// and accepting, the new instance asks the one it took the sockets from to drain and exit. Every failure stays safe.
/// </summary>
public class OneCommandDeployTests(ITestOutputHelper output)
{
    private const int Deploys = 3;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(40);
    private static readonly string[] s_arguments = ["--ReusePort:ListenerCount=2"];
    private static readonly string[] s_replacing = ["--ReusePort:ListenerCount=2", "--ReusePort:StopPredecessor=true"];

    [Theory]
    [InlineData(LoadMode.Churn)]
    [InlineData(LoadMode.KeepAlive)]
    public async Task StartingTheNewVersionIsTheWholeDeployAndLosesNothing(LoadMode mode)
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        var instances = new List<SampleProcess>();
        try
        {
            var old = SampleProcess.Start(urls, s_arguments, name: "instance 0");
            instances.Add(old);
            await old.WaitUntilServingAsync(endPoint);
            await Rendezvous.WaitUntilOfferedAsync(old, $"127.0.0.1:{port}");
            await using var load = LoadGenerator.Start(endPoint, mode);
            await load.WaitForMoreRequestsAsync(200, s_timeout);

            for (var deploy = 1; deploy <= Deploys; deploy++)
            {
                // Nothing but the start of the new version: no signal is sent to the old one.
                var next = SampleProcess.Start(urls, s_replacing, name: $"instance {deploy}");
                instances.Add(next);
                await next.WaitUntilStartedAsync();
                Assert.Equal(0, await old.WaitForExitAsync(s_timeout));
                Assert.True(old.HasEvent(22, e => (e.Number("ProcessId"), e["EndPoint"]) == (next.Pid, $"127.0.0.1:{port}")), old.Output);
                Assert.True(next.HasEvent(23, e => e.Number("ProcessId") == old.Pid), next.Output);
                old = next;
                await Rendezvous.WaitUntilOfferedAsync(old, $"127.0.0.1:{port}");
                await load.WaitForMoreRequestsAsync(100, s_timeout);
            }

            var result = await load.StopAsync();
            output.WriteLine($"{mode}, {Deploys} one-command deploys: {result}");
            Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());
            Assert.True(ListeningSockets.HeldBy(old.Pid, port).Count == 2, ListeningSockets.Describe(port, old.Pid));
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
    public async Task ANewInstanceThatDiesWhileWarmingUpLeavesTheOldOneUntouched()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");

        // Its warm-up request takes ten minutes: it is killed while it waits for it.
        using (var dying = SampleProcess.Start(urls, [.. s_replacing, "--ReusePort:Warmup:Paths:0=/delay/600000", "--ReusePort:Warmup:Timeout=00:05:00"], name: "dying"))
        {
            await dying.WaitForEventAsync(SampleProcess.NowListeningEventId, s_timeout, SampleProcess.HostCategory);
            dying.Kill();
            await dying.WaitForExitAsync(s_timeout);
            Assert.False(dying.HasEvent(6), dying.Output);
        }

        // The old instance was never asked for anything: it holds and serves the port alone, and stays.
        Assert.False(old.HasExited);
        Assert.False(old.HasEvent(8) || old.HasEvent(22), old.Output);
        Assert.Equal(2, ListeningSockets.HeldBy(old.Pid, port).Count);
        var responses = await RawHttpClient.GetManyAsync(endPoint, 40);
        Assert.All(responses, r => Assert.Equal(old.Pid, r.RequirePid()));
    }

    [Fact]
    public async Task AHungOldInstanceIsNotAskedAndTheNewOneServesAndSaysSo()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "hung");
        await old.FreezeAsync();
        try
        {
            using var next = SampleProcess.Start(urls, [.. s_replacing, "--ReusePort:HandoffTimeout=00:00:02"], name: "new");
            await next.WaitUntilStartedAsync();
            Assert.True(next.HasEvent(7, e => e["EndPoint"] == $"127.0.0.1:{port}"), next.Output);
            Assert.True(next.HasEvent(25), next.Output);
            Assert.Equal(2, ListeningSockets.HeldBy(next.Pid, port).Count);

            // Once it runs again, the old instance was told nothing: it keeps serving beside the new one, each with
            // sockets of its own, over which the kernel spreads new connections.
            old.Thaw();
            Assert.Equal(4, ListeningSockets.OnPort(port).Count);
            var pids = (await RawHttpClient.GetManyAsync(endPoint, 200, concurrency: 4)).Select(r => r.RequirePid()).ToHashSet();
            Assert.True(pids.SetEquals([old.Pid, next.Pid]), string.Join(", ", pids));
            Assert.False(old.HasExited);
        }
        finally
        {
            old.Thaw();
        }
    }

    [Fact]
    public async Task TwoNewInstancesAtOnceStopTheOldOneOnceAndBothServe()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");

        using var first = SampleProcess.Start(urls, s_replacing, name: "first");
        using var second = SampleProcess.Start(urls, s_replacing, name: "second");
        await Task.WhenAll(first.WaitUntilStartedAsync(), second.WaitUntilStartedAsync());
        Assert.Equal(0, await old.WaitForExitAsync(s_timeout));
        Assert.Single(old.HostMessages("Application is shutting down"));

        // Both took the same sockets from the old instance, and both answer on them now.
        Assert.True(ListeningSockets.OnPort(port).Count == 2, ListeningSockets.Describe(port, first.Pid, second.Pid));
        await AssertBothServeAsync(endPoint, first, second);
    }

    /// <summary>
    /// Both processes accept on the same sockets, and the kernel wakes both: whichever runs first takes the connection,
    /// often the same one. So each is shown to serve on its own, with the other frozen.
    /// </summary>
    private static async Task AssertBothServeAsync(IPEndPoint endPoint, SampleProcess first, SampleProcess second)
    {
        foreach (var (serving, frozen) in new[] { (first, second), (second, first) })
        {
            await frozen.FreezeAsync();
            try
            {
                var responses = await RawHttpClient.GetManyAsync(endPoint, 20);
                Assert.All(responses, r => Assert.Equal(serving.Pid, r.RequirePid()));
            }
            finally
            {
                frozen.Thaw();
            }
        }
    }
}
