using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>Stopping the host closes every listening socket and the handoff rendezvous.</summary>
public class StopTests
{
    [Fact]
    public async Task StopLeavesNothingListening()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });
        using var listeningSockets = Instruments.Counter(server.MeterScope, Instruments.ListeningSockets);
        await server.StartAsync();

        Assert.Equal(2, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        var listening = Assert.Single(listeningSockets.Observe());
        Assert.Equal(2, listening.Value);
        Assert.Equal("127.0.0.1", listening.Tag("server.address"));
        Assert.Equal(port, listening.Tag("server.port"));
        await Eventually.UntilAsync(() => server.Logs.ReusePortEvents(10).Count > 0, TimeSpan.FromSeconds(10), "the rendezvous offer");
        var socketFile = Rendezvous.DefaultDirectory is { } directory ? Rendezvous.SocketFile(directory, $"127.0.0.1:{port}") : null;
        var lockFile = Rendezvous.DefaultDirectory is { } same ? Rendezvous.LockFile(same, $"127.0.0.1:{port}") : null;
        Assert.True(socketFile is null || File.Exists(socketFile), $"{socketFile} should exist while the server runs");
        var response = await RawHttpClient.GetAsync(endPoint);
        Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);

        await server.StopAsync();

        // Not eventually: once StopAsync returned, nothing listens on the port, and a clean stop leaves no rendezvous file.
        Assert.Empty(ListeningSockets.OnPort(port));
        Assert.False(socketFile is not null && File.Exists(socketFile), $"{socketFile} is left behind");
        Assert.False(lockFile is not null && File.Exists(lockFile), $"{lockFile} is left behind");
        Assert.Empty(listeningSockets.Observe());
        var refused = await Assert.ThrowsAsync<SocketException>(() => RawHttpClient.GetAsync(endPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task StopWithPortZeroAndSeveralEndpointsLeavesNothingListening()
    {
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            ConfigureKestrel = k =>
            {
                k.Listen(IPAddress.Loopback, 0);
                k.Listen(IPAddress.IPv6Loopback, 0);
            },
            ConfigureReusePort = o => o.ListenerCount = 3,
        });
        using var listeningSockets = Instruments.Counter(server.MeterScope, Instruments.ListeningSockets);
        await server.StartAsync();
        var ports = server.Addresses.Select(a => a.Port).ToList();
        Assert.Equal(2, ports.Count);
        Assert.All(ports, p => Assert.Equal(3, ListeningSockets.HeldBy(Environment.ProcessId, p).Count));
        Assert.Equal(6, listeningSockets.Observe().Sum(m => m.Value));

        await server.StopAsync();

        Assert.All(ports, p => Assert.Empty(ListeningSockets.OnPort(p)));
        Assert.Empty(listeningSockets.Observe());
    }
}
