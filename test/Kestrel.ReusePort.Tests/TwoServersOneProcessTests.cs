using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>Two Kestrel servers of one process share a port, each with its own SO_REUSEPORT sockets.</summary>
public class TwoServersOneProcessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwoServersOnOnePortBothAnswerWithTheirOwnSockets()
    {
        await using var first = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Name = "first",
            ConfigureReusePort = o =>
            {
                o.ListenerCount = 2;
                o.SocketHandoff = false;
            },
        });
        var port = first.Port;
        Assert.NotEqual(0, port);

        // Binding a port held by a listening socket fails unless both set SO_REUSEPORT.
        await using var second = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Name = "second",
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o =>
            {
                o.ListenerCount = 2;
                o.SocketHandoff = false;
            },
        });
        Assert.Equal(port, second.Port);

        // Without handoff each server opened its own 2 sockets: 4 in the port's group, all held by this process.
        var sockets = ListeningSockets.OnPort(port);
        Assert.Equal(4, sockets.Count);
        Assert.All(sockets, s => Assert.Equal(IPAddress.Loopback, s.Address));
        Assert.Equal(4, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        Assert.Equal(4, sockets.Select(s => s.Inode).Distinct().Count());

        // The kernel spreads fresh connections over all 4 sockets, so both servers get about half.
        const int requests = 400;
        var responses = await RawHttpClient.GetManyAsync(new IPEndPoint(IPAddress.Loopback, port), requests);
        Assert.All(responses, r => Assert.Equal(200, r.StatusCode));
        var byFirst = responses.Count(r => r.Body.StartsWith(first.Greeting, StringComparison.Ordinal));
        var bySecond = responses.Count(r => r.Body.StartsWith(second.Greeting, StringComparison.Ordinal));
        output.WriteLine($"{requests} fresh connections: first answered {byFirst}, second {bySecond}.");
        Assert.Equal(requests, byFirst + bySecond);
        Assert.True(byFirst >= requests / 5 && bySecond >= requests / 5,
            $"Expected each server to answer at least 20% of {requests} fresh connections; first {byFirst}, second {bySecond}.");
    }
}
