using System.Diagnostics;
using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// An instance removed without a successor (scale-in, a pod terminated), as a load balancer sees it: two "pods", the
/// sample on 127.0.0.2 and 127.0.0.3 on one port, behind an L4 balancer that keeps sending the removed pod new
/// connections for a propagation delay after its SIGTERM, as kube-proxy does until the endpoint removal reaches it.
/// </summary>
public class RemovalDelayTests(ITestOutputHelper output)
{
    private const int RemovalDelayStarted = 37;
    private const int RemovalDelaySkipped = 38;
    private const int RemovalDelaySuccessor = 39;
    private const int RemovalDelayEnded = 40;
    private const int HandoffSent = 8;
    private const int DrainStarted = 12;

    private static readonly TimeSpan s_propagationDelay = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private static readonly IPAddress s_podA = IPAddress.Parse("127.0.0.2");
    private static readonly IPAddress s_podB = IPAddress.Parse("127.0.0.3");

    [Theory]
    [InlineData(LoadMode.Churn)]
    [InlineData(LoadMode.KeepAlive)]
    public async Task WithoutARemovalDelayTheBalancersLateConnectionsAreRefused(LoadMode mode)
    {
        var removal = await RemovePodUnderLoadAsync(mode, removalDelay: null);

        // The problem the option solves: the pod stopped accepting at SIGTERM, and the balancer still sent it clients.
        Assert.True(removal.RefusedByRemoved > 0, $"no connection was refused by the removed pod\n{removal}");
        Assert.True(removal.Clients.Errors > 0, $"no client saw an error\n{removal}");
        Assert.Equal(0, removal.DelaysStarted);
    }

    [Theory]
    [InlineData(LoadMode.Churn)]
    [InlineData(LoadMode.KeepAlive)]
    public async Task WithARemovalDelayLongerThanThePropagationNothingIsLost(LoadMode mode)
    {
        var removal = await RemovePodUnderLoadAsync(mode, removalDelay: TimeSpan.FromSeconds(5));

        // The balancer did send the pod connections after its SIGTERM, and the pod served every one of them.
        Assert.True(removal.SentToRemoved > 0, $"the balancer sent the removed pod nothing after its SIGTERM\n{removal}");
        Assert.Equal(0, removal.RefusedByBalancer);
        Assert.Equal(0, removal.Clients.Errors);
        Assert.Equal(0, removal.Clients.Non2xx);
        Assert.Equal(1, removal.DelaysStarted);
        Assert.Equal(1, removal.DelaysEnded);
    }

    [Fact]
    public async Task AReplacedInstanceStopsAcceptingAtOnceDespiteARemovalDelay()
    {
        var port = PortAllocator.GetFreePort();
        var a = new IPEndPoint(s_podA, port);
        string[] arguments = ["--ReusePort:ListenerCount=1", "--ReusePort:RemovalDelay=00:00:20"];
        using var old = await StartPodAsync(a, arguments, "old instance");
        await Rendezvous.WaitUntilOfferedAsync(old, a.ToString());
        await using var balancer = L4Balancer.Start(a);
        await using var load = LoadGenerator.Start(balancer.EndPoint, LoadMode.KeepAlive);
        await load.WaitForMoreRequestsAsync(200, s_timeout);

        using var successor = SampleProcess.Start($"http://{a}", arguments, name: "successor");
        await successor.WaitUntilStartedAsync();
        await old.WaitForEventAsync(HandoffSent, s_timeout);

        var terminated = Stopwatch.GetTimestamp();
        old.SignalTerm();
        await old.WaitForEventAsync(RemovalDelaySkipped, s_timeout);
        await old.WaitForEventAsync(DrainStarted, s_timeout);
        Assert.Equal(0, await old.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var exitedAfter = Stopwatch.GetElapsedTime(terminated);

        await load.WaitForMoreRequestsAsync(200, s_timeout);
        var result = await load.StopAsync();
        output.WriteLine($"Replaced instance (RemovalDelay 20 s): exited {exitedAfter.TotalMilliseconds:0} ms after SIGTERM; " +
            $"balancer refused {balancer.RefusedConnections}; clients: {result}");

        Assert.Equal(0, old.CountEvents(RemovalDelayStarted));
        Assert.Equal(0, result.Errors);
        Assert.Equal(0, balancer.RefusedConnections);
    }

    [Fact]
    public async Task ASuccessorThatTakesTheSocketsDuringTheDelayEndsIt()
    {
        var port = PortAllocator.GetFreePort();
        var a = new IPEndPoint(s_podA, port);
        string[] arguments = ["--ReusePort:ListenerCount=1", "--ReusePort:RemovalDelay=00:01:00", "--shutdownTimeoutSeconds=90"];
        using var old = await StartPodAsync(a, arguments, "old instance");
        await Rendezvous.WaitUntilOfferedAsync(old, a.ToString());
        await using var balancer = L4Balancer.Start(a);
        await using var load = LoadGenerator.Start(balancer.EndPoint, LoadMode.KeepAlive);
        await load.WaitForMoreRequestsAsync(200, s_timeout);

        old.SignalTerm();
        await old.WaitForEventAsync(RemovalDelayStarted, s_timeout);
        await load.WaitForMoreRequestsAsync(200, s_timeout);

        using var successor = SampleProcess.Start($"http://{a}", arguments, name: "successor");
        await successor.WaitUntilStartedAsync();
        var tookOver = Stopwatch.GetTimestamp();
        await old.WaitForEventAsync(RemovalDelaySuccessor, s_timeout);

        // Well before the minute of delay: the successor serves the sockets, so the old instance drains and goes.
        Assert.Equal(0, await old.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        var exitedAfter = Stopwatch.GetElapsedTime(tookOver);

        await load.WaitForMoreRequestsAsync(200, s_timeout);
        var result = await load.StopAsync();
        output.WriteLine($"Successor during the delay (RemovalDelay 60 s): old instance exited {exitedAfter.TotalMilliseconds:0} ms after the successor started; " +
            $"balancer refused {balancer.RefusedConnections}; clients: {result}");

        Assert.Equal(0, old.CountEvents(RemovalDelayEnded));
        Assert.Equal(0, result.Errors);
        Assert.Equal(0, balancer.RefusedConnections);
    }

    private static async Task<SampleProcess> StartPodAsync(IPEndPoint endPoint, IEnumerable<string> arguments, string name)
    {
        var pod = SampleProcess.Start($"http://{endPoint}", arguments, name: name);
        try
        {
            await pod.WaitUntilServingAsync(endPoint);
            return pod;
        }
        catch
        {
            pod.Dispose();
            throw;
        }
    }

    private async Task<Removal> RemovePodUnderLoadAsync(LoadMode mode, TimeSpan? removalDelay)
    {
        var port = PortAllocator.GetFreePort();
        var a = new IPEndPoint(s_podA, port);
        var b = new IPEndPoint(s_podB, port);
        string[] arguments = ["--ReusePort:ListenerCount=1", .. removalDelay is { } delay ? [$"--ReusePort:RemovalDelay={delay}"] : Array.Empty<string>()];
        using var podA = await StartPodAsync(a, arguments, "pod A");
        using var podB = await StartPodAsync(b, arguments, "pod B");
        await using var balancer = L4Balancer.Start(a, b);
        LoadResult result;
        await using (var load = LoadGenerator.Start(balancer.EndPoint, mode))
        {
            await load.WaitForMoreRequestsAsync(200, s_timeout);

            // Kubernetes sends SIGTERM and removes the endpoint at the same time; the removal takes a while to arrive.
            podA.SignalTerm();
            balancer.Remove(a, s_propagationDelay);
            await Eventually.UntilAsync(() => balancer.IsDropped(a), s_timeout, "the balancer to drop pod A");
            Assert.Equal(0, await podA.WaitForExitAsync(s_timeout));
            await load.WaitForMoreRequestsAsync(200, s_timeout);
            result = await load.StopAsync();
        }

        var removal = new Removal(result, balancer.ConnectionsAfterRemoval(a), balancer.RefusedBy(a), balancer.RefusedConnections,
            podA.CountEvents(RemovalDelayStarted), podA.CountEvents(RemovalDelayEnded));
        output.WriteLine($"{mode}, RemovalDelay {removalDelay?.ToString() ?? "off"}, propagation {s_propagationDelay.TotalSeconds} s: {removal}");
        return removal;
    }

    private sealed record Removal(LoadResult Clients, long SentToRemoved, long RefusedByRemoved, long RefusedByBalancer, int DelaysStarted, int DelaysEnded)
    {
        public override string ToString() =>
            $"sent to the removed pod after its SIGTERM {SentToRemoved}, refused or reset by it {RefusedByRemoved} (all pods {RefusedByBalancer}); " +
            $"removal delay started {DelaysStarted}, ended {DelaysEnded}; clients: {Clients}";
    }
}
