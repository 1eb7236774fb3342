using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>Two processes of the sample app on one port, with and without socket handoff.</summary>
public class TwoProcessesTests(ITestOutputHelper output)
{
    private const int Requests = 400;

    [Fact]
    public async Task WithoutHandoffEachProcessOpensItsOwnSocketsAndBothAnswer()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        string[] arguments = ["--ReusePort:ListenerCount=2", "--ReusePort:SocketHandoff=false"];
        using var first = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "first");
        await first.WaitUntilServingAsync(endPoint);
        using var second = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "second");
        await second.WaitUntilStartedAsync();

        Assert.True(second.HasEvent(1, e => (e["EndPoint"], e["SocketCount"], e["InheritedCount"]) == ($"127.0.0.1:{port}", "2", "0")), second.Output);

        // Each process holds exactly its own 2 sockets; the port's group has all 4.
        var firstSockets = ListeningSockets.HeldBy(first.Pid, port);
        var secondSockets = ListeningSockets.HeldBy(second.Pid, port);
        var description = ListeningSockets.Describe(port, first.Pid, second.Pid);
        Assert.True(firstSockets.Count == 2, description);
        Assert.True(secondSockets.Count == 2, description);
        Assert.True(!firstSockets.Select(s => s.Inode).Intersect(secondSockets.Select(s => s.Inode)).Any(), description);
        Assert.True(ListeningSockets.OnPort(port).Count == 4, description);

        // The kernel balances fresh connections over the 4 sockets: each process gets about half.
        var responses = await RawHttpClient.GetManyAsync(endPoint, Requests);
        var (byFirst, bySecond) = CountByProcess(responses, first, second);
        Assert.True(byFirst >= Requests / 5 && bySecond >= Requests / 5,
            $"Expected each process to answer at least 20% of {Requests} fresh connections; {first.Pid}: {byFirst}, {second.Pid}: {bySecond}.");
    }

    [Fact]
    public async Task WithHandoffTheSecondProcessTakesTheSocketsOverAndBothAnswer()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);

        // Default options but for an explicit ListenerCount, so that the counts do not depend on the machine.
        string[] arguments = ["--ReusePort:ListenerCount=2"];
        using var first = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "first");
        await first.WaitUntilServingAsync(endPoint);

        // The rendezvous is offered asynchronously once the first instance listens.
        await Rendezvous.WaitUntilOfferedAsync(first, $"127.0.0.1:{port}");

        using var second = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "second");
        await second.WaitUntilStartedAsync();

        await second.WaitForEventAsync(
            6, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", $"127.0.0.1:{port}", first.Pid), TimeSpan.FromSeconds(5));
        Assert.True(second.HasEvent(1, e => (e["EndPoint"], e["SocketCount"], e["InheritedCount"]) == ($"127.0.0.1:{port}", "2", "2")), second.Output);
        await first.WaitForEventAsync(
            8, e => (e["SocketCount"], e["EndPoint"], e.Number("ProcessId")) == ("2", $"127.0.0.1:{port}", second.Pid), TimeSpan.FromSeconds(5));

        // Still 2 sockets on the port, each one held by both processes.
        var sockets = ListeningSockets.OnPort(port);
        var firstHeld = ListeningSockets.SocketInodesHeldBy(first.Pid);
        var secondHeld = ListeningSockets.SocketInodesHeldBy(second.Pid);
        var description = ListeningSockets.Describe(port, first.Pid, second.Pid);
        Assert.True(sockets.Count == 2, description);
        Assert.True(sockets.All(s => firstHeld.Contains(s.Inode) && secondHeld.Contains(s.Inode)), description);

        // Both processes accept on the shared sockets, so fresh connections reach both.
        var responses = await RawHttpClient.GetManyAsync(endPoint, Requests);
        var (byFirst, bySecond) = CountByProcess(responses, first, second);
        Assert.True(byFirst > 0 && bySecond > 0,
            $"Expected both processes to answer fresh connections; {first.Pid}: {byFirst}, {second.Pid}: {bySecond}.");
    }

    /// <summary>How many responses each process gave; every response must come from one of the two.</summary>
    private (int ByFirst, int BySecond) CountByProcess(IReadOnlyList<RawHttpResponse> responses, SampleProcess first, SampleProcess second)
    {
        var pids = responses.Select(r => r.RequirePid()).ToList();
        var byFirst = pids.Count(p => p == first.Pid);
        var bySecond = pids.Count(p => p == second.Pid);
        output.WriteLine($"{responses.Count} fresh connections: pid {first.Pid} answered {byFirst}, pid {second.Pid} answered {bySecond}.");
        Assert.Equal(responses.Count, byFirst + bySecond);
        return (byFirst, bySecond);
    }
}
