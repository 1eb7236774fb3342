using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// An instance warms up through its own pipeline before it takes anything from the port, and every signal a deploy
/// tool may wait on comes only after that; a warm-up that fails or hangs on a first start is logged and the instance
/// serves anyway (over a running instance, see <see cref="BrokenReleaseTests"/>).
/// </summary>
public class WarmupTests
{
    private const string WarmupUserAgent = "Kestrel.ReusePort-warmup";

    [Fact]
    public async Task NoSignalOfReadinessComesBeforeTheWarmupWentThroughThePipeline()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var warmupArrived = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o =>
            {
                o.ListenerCount = 2;
                o.Warmup.Paths.Add("/gate");
            },
            ConfigureApp = app => app.MapGet("/gate", async (HttpContext context) =>
            {
                warmupArrived.TrySetResult(context.Request.Headers.UserAgent.ToString());
                await release.Task;
                return "open";
            }),
        });
        var lifetime = server.App.Services.GetRequiredService<IHostApplicationLifetime>();

        var starting = server.StartAsync();
        var userAgent = await warmupArrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith(WarmupUserAgent, userAgent, StringComparison.Ordinal);

        // The warm-up request is in the app now: the instance holds the address, but nothing a deploy tool looks at
        // says it is ready, and the port takes no connection.
        Assert.False(starting.IsCompleted);
        Assert.False(lifetime.ApplicationStarted.IsCancellationRequested);
        Assert.Empty(ListeningSockets.HeldBy(Environment.ProcessId, port));
        Assert.Empty(server.Logs.ReusePortEvents(1));
        var refused = await Assert.ThrowsAsync<SocketException>(() => RawHttpClient.GetAsync(endPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        release.SetResult();
        await starting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(lifetime.ApplicationStarted.IsCancellationRequested);
        Assert.Equal(2, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        var warmedUp = Assert.Single(server.Logs.ReusePortEvents(19));
        Assert.Contains("HTTP/1.1 2x 200", warmedUp.State("Summary"), StringComparison.Ordinal);
        var entries = server.Logs.GetSnapshot().ToList();
        Assert.True(entries.IndexOf(warmedUp) < entries.IndexOf(Assert.Single(server.Logs.ReusePortEvents(1))), "warmed up before listening");
        Assert.StartsWith(server.Greeting, (await RawHttpClient.GetAsync(endPoint)).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WarmupGoesThroughTlsAndHttp2AndNeverReachesTheRunningInstance()
    {
        using var certificate = TestCertificate.Create();
        var port = PortAllocator.GetFreePort();
        var warmups = new ConcurrentQueue<(string Server, string Protocol, bool Https)>();
        InProcessServerOptions Options(string name) => new()
        {
            Name = name,
            ConfigureReusePort = o => o.ListenerCount = 2,
            ConfigureKestrel = k => k.Listen(IPAddress.Loopback, port, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(certificate);
            }),
            ConfigureApp = app => app.Use((context, next) =>
            {
                if (context.Request.Headers.UserAgent.ToString().StartsWith(WarmupUserAgent, StringComparison.Ordinal))
                {
                    warmups.Enqueue((name, context.Request.Protocol, context.Request.IsHttps));
                }

                return next(context);
            }),
        };

        await using var old = await InProcessServer.StartAsync(Options("old"));
        await Eventually.UntilAsync(() => old.Logs.ReusePortEvents(10).Count > 0, TimeSpan.FromSeconds(10), "the old instance's offer");
        var oldWarmups = warmups.Count(w => w.Server == "old");

        await using var next = await InProcessServer.StartAsync(Options("new"));

        // The new instance took the old one's sockets, after it warmed up over its own private socket: every protocol
        // of the endpoint went through its pipeline, with TLS, and none of it reached the old instance.
        Assert.Single(next.Logs.ReusePortEvents(6));
        var mine = warmups.Where(w => w.Server == "new").ToList();
        Assert.Contains(mine, w => w.Protocol == "HTTP/1.1");
        Assert.Contains(mine, w => w.Protocol == "HTTP/2");
        Assert.All(mine, w => Assert.True(w.Https));
        Assert.Equal(oldWarmups, warmups.Count(w => w.Server == "old"));
        Assert.Contains("HTTP/2 2x 200", Assert.Single(next.Logs.ReusePortEvents(19)).State("Summary"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACleartextHttp2OnlyEndpointIsWarmedWithHttp2()
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureReusePort = o => o.ListenerCount = 1,
            ConfigureKestrel = k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2),
        });

        Assert.Contains("HTTP/2 2x 200", Assert.Single(server.Logs.ReusePortEvents(19)).State("Summary"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/fail", "500")]
    [InlineData("/hang", "the warm-up timed out during GET /hang")]
    public async Task AWarmupThatFailsOrHangsOnAFirstStartIsLoggedAndTheInstanceServesAnyway(string path, string reason)
    {
        var hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
            {
                ConfigureReusePort = o =>
                {
                    o.ListenerCount = 1;
                    o.Warmup.Paths.Add(path);
                    o.Warmup.Timeout = TimeSpan.FromSeconds(1);
                },
                ConfigureApp = app =>
                {
                    app.MapGet("/fail", () => Results.StatusCode(500));
                    app.MapGet("/hang", async (HttpContext context) =>
                    {
                        await hang.Task.WaitAsync(context.RequestAborted);
                        return "late";
                    });
                },
            });

            var failed = Assert.Single(server.Logs.ReusePortEvents(20));
            Assert.Contains(reason, failed.State("Summary"), StringComparison.Ordinal);
            // No instance ran on the port: a first start serves anyway, and says so.
            Assert.Single(server.Logs.ReusePortEvents(34));
            Assert.Single(server.Logs.ReusePortEvents(1));
            Assert.StartsWith(server.Greeting, (await RawHttpClient.GetAsync(server.EndPoint)).Body, StringComparison.Ordinal);
        }
        finally
        {
            hang.TrySetResult();
        }
    }
}
