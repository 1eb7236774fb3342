using System.Net;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.ReusePort.Tests;

/// <summary>A draining instance tells HTTP/2 clients to move with GOAWAY, between two requests.</summary>
public class Http2DrainTests
{
    [Fact]
    public async Task DrainingAnswersAnHttp2RequestAndSendsGoAway()
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureReusePort = o =>
            {
                o.SocketHandoff = false;
                o.DrainTimeout = TimeSpan.FromSeconds(60);
            },
            ConfigureKestrel = k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2),
        });

        using var client = new HttpClient(new SocketsHttpHandler())
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var uri = new Uri($"http://127.0.0.1:{server.Port}/");
        using (var first = await client.GetAsync(uri))
        {
            Assert.Equal(HttpVersion.Version20, first.Version);
        }

        var drain = server.App.Services.GetRequiredService<TransportDrain>();
        var stopping = server.StopAsync();
        await Eventually.UntilAsync(() => drain.IsDraining, TimeSpan.FromSeconds(10), "the drain to start");

        // The open HTTP/2 connection is still served during the drain...
        using (var during = await client.GetAsync(uri))
        {
            Assert.Equal(HttpStatusCode.OK, during.StatusCode);
            Assert.Equal(HttpVersion.Version20, during.Version);
        }

        // ...and told to go away, so it closes and the drain ends with nothing open, long before its 60 s window.
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
        // Event 13: the drain ended with no connection left, before its bound (event 18).
        Assert.Single(server.Logs.ReusePortEvents(13));
        Assert.Empty(server.Logs.ReusePortEvents(18));
    }
}
