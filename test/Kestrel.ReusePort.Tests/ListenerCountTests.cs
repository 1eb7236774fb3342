using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
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

    /// <summary>
    /// A connection accepted from a listening socket that knows its own address shares that address; one accepted from a
    /// socket that does not asks the kernel (getsockname), a system call per connection, which costs throughput under
    /// connection churn. Each connection's local endpoint is then a new object: so every socket of the group must have
    /// given its connections the one it holds.
    /// </summary>
    [Fact]
    public async Task ConnectionsTakeTheirLocalAddressFromTheirListeningSocket()
    {
        const int listenerCount = 3;
        const int connections = 60;
        await using var listener = await DirectListener.BindAsync(new ReusePortSocketTransportOptions { ListenerCount = listenerCount });

        var clients = new List<Socket>();
        var accepted = new List<ConnectionContext>();
        try
        {
            for (var i = 0; i < connections; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(listener.EndPoint);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                accepted.Add(await listener.AcceptAsync(timeout.Token) ?? throw new InvalidOperationException("the listener stopped"));
            }

            Assert.All(accepted, c => Assert.Equal(listener.EndPoint, c.LocalEndPoint));
            var instances = accepted.Select(c => RuntimeHelpers.GetHashCode(c.LocalEndPoint!)).Distinct().Count();
            output.WriteLine($"{connections} connections over {listenerCount} sockets: {instances} local endpoint objects.");
            Assert.InRange(instances, 1, listenerCount);
        }
        finally
        {
            foreach (var connection in accepted)
            {
                await connection.DisposeAsync();
            }

            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}
