using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>ListenerCount sockets per endpoint, each with a working accept loop.</summary>
public class ListenerCountTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ThreeListenersGiveThreeSocketsThatAllAccept()
    {
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            ConfigureReusePort = o => o.ListenerCount = 3,
        });
        using var acceptedConnections = Instruments.Counter(server.MeterScope, Instruments.AcceptedConnections);
        using var listeningSockets = Instruments.Counter(server.MeterScope, Instruments.ListeningSockets);
        await server.StartAsync();
        var port = server.Port;

        var held = ListeningSockets.HeldBy(Environment.ProcessId, port);
        Assert.Equal(3, held.Count);
        Assert.Equal(3, ListeningSockets.OnPort(port).Count);
        Assert.All(held, s => Assert.Equal(IPAddress.Loopback, s.Address));

        var listening = Assert.Single(server.Logs.ReusePortEvents(1));
        Assert.Equal(($"127.0.0.1:{port}", "3", "0"), (listening.State("EndPoint"), listening.State("SocketCount"), listening.State("InheritedCount")));

        const int requests = 300;
        var responses = await RawHttpClient.GetManyAsync(server.EndPoint, requests);
        Assert.All(responses, r => Assert.StartsWith(server.Greeting, r.Body, StringComparison.Ordinal));

        // Counted when accepted, before the connection is handed to Kestrel: every answered connection is in.
        var accepted = acceptedConnections.GetMeasurementSnapshot();
        Assert.Equal(requests, accepted.Sum(m => m.Value));
        Assert.All(accepted, m =>
        {
            // Kestrel's and OpenTelemetry's attribute names and values, plus the library's socket index.
            Assert.Equal("127.0.0.1", m.Tag("server.address"));
            Assert.Equal(port, m.Tag("server.port"));
            Assert.Equal("ipv4", m.Tag("network.type"));
            Assert.Equal("tcp", m.Tag("network.transport"));
        });
        var bySocket = accepted.GroupBy(m => Assert.IsType<int>(m.Tag("kestrel.reuseport.socket.index"))).ToDictionary(g => g.Key, g => g.Sum(m => m.Value));
        output.WriteLine($"{requests} fresh connections by socket: {string.Join(", ", bySocket.OrderBy(p => p.Key).Select(p => $"{p.Key}: {p.Value}"))}.");
        Assert.True(bySocket.Keys.Order().SequenceEqual([0, 1, 2]),
            $"Expected connections on sockets 0, 1 and 2; got {string.Join(", ", bySocket.Select(p => $"socket {p.Key}: {p.Value}"))}.");
        Assert.Equal(3, Assert.Single(listeningSockets.Observe()).Value);
    }
}
