using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>Unix domain socket endpoints go to Kestrel's stock transport, next to SO_REUSEPORT IP endpoints.</summary>
public sealed class UnixSocketTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("kestrel-reuseport-uds-");

    [Fact]
    public async Task UnixSocketEndpointWorksNextToAReusePortIPEndpoint()
    {
        var path = Path.Combine(_directory.FullName, "app.sock");
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureKestrel = k =>
            {
                k.ListenUnixSocket(path);
                k.Listen(IPAddress.Loopback, 0);
            },
            ConfigureReusePort = o => o.ListenerCount = 2,
        });

        Assert.True(File.Exists(path), $"Kestrel did not create {path}.");
        var overUnix = await RawHttpClient.GetAsync(new UnixDomainSocketEndPoint(path));
        Assert.Equal(200, overUnix.StatusCode);
        Assert.StartsWith(server.Greeting, overUnix.Body, StringComparison.Ordinal);

        // The IP endpoint still has its SO_REUSEPORT group; only it was bound by this transport.
        var ip = Assert.Single(server.Addresses);
        Assert.Equal(2, ListeningSockets.HeldBy(Environment.ProcessId, ip.Port).Count);
        var listening = Assert.Single(server.Logs.ReusePortEvents(1));
        Assert.Equal(($"127.0.0.1:{ip.Port}", "2"), (listening.State("EndPoint"), listening.State("SocketCount")));
        var overTcp = await RawHttpClient.GetAsync(InProcessServer.ToEndPoint(ip));
        Assert.StartsWith(server.Greeting, overTcp.Body, StringComparison.Ordinal);
    }

    public void Dispose() => _directory.Delete(recursive: true);
}
