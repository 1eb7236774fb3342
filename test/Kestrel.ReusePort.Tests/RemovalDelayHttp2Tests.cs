using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kestrel.ReusePort.Tests;

/// <summary>During the removal delay an HTTP/2 connection is served, then told to go away, while new ones are still accepted.</summary>
public class RemovalDelayHttp2Tests
{
    private const int RemovalDelayStarted = 37;

    [Fact]
    public async Task DuringTheRemovalDelayAnHttp2ConnectionIsServedThenGetsGoAwayAndTheNextIsAccepted()
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureReusePort = o => o.RemovalDelay = TimeSpan.FromSeconds(5),
            ConfigureKestrel = k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2),
        });

        var connections = 0;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        })
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var uri = new Uri($"http://127.0.0.1:{server.Port}/");
        var stopping = server.StopAsync();
        await Eventually.UntilAsync(() => server.Logs.ReusePortEvents(RemovalDelayStarted).Count > 0, TimeSpan.FromSeconds(10), "the removal delay to start");

        // A new connection is accepted and served, and gets GOAWAY before its response: the next request opens another.
        for (var i = 1; i <= 2; i++)
        {
            using var response = await client.GetAsync(uri);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal(i, Volatile.Read(ref connections));
        }

        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
