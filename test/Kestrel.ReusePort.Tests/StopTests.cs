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
        var rendezvous = AbstractUnixSockets.RendezvousName($"127.0.0.1:{port}");
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });
        using var metrics = new MetricRecorder(server.MeterScope);
        await server.StartAsync();

        Assert.Equal(2, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        Assert.Equal(2, metrics.Sum(MetricRecorder.ListeningSockets));
        await Eventually.UntilAsync(() => AbstractUnixSockets.IsListening(rendezvous), TimeSpan.FromSeconds(10), $"the rendezvous {rendezvous}");
        var response = await RawHttpClient.GetAsync(endPoint);
        Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);

        await server.StopAsync();

        // Not eventually: once StopAsync returned, nothing listens on the port or under the rendezvous name.
        Assert.Empty(ListeningSockets.OnPort(port));
        Assert.Equal(0, AbstractUnixSockets.Count(rendezvous));
        Assert.Equal(0, metrics.Sum(MetricRecorder.ListeningSockets));
        Assert.All(metrics.Measurements(MetricRecorder.ListeningSockets), m => Assert.Equal($"127.0.0.1:{port}", m.Tag("endpoint")));
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
        using var metrics = new MetricRecorder(server.MeterScope);
        await server.StartAsync();
        var ports = server.Addresses.Select(a => a.Port).ToList();
        Assert.Equal(2, ports.Count);
        Assert.All(ports, p => Assert.Equal(3, ListeningSockets.HeldBy(Environment.ProcessId, p).Count));
        Assert.Equal(6, metrics.Sum(MetricRecorder.ListeningSockets));

        await server.StopAsync();

        Assert.All(ports, p => Assert.Empty(ListeningSockets.OnPort(p)));
        Assert.Equal(0, metrics.Sum(MetricRecorder.ListeningSockets));
    }
}
