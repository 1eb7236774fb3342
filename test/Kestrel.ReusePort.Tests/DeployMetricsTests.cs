using System.Net;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// How a deploy went, in the <c>Kestrel.ReusePort</c> meter, read with <see cref="MetricCollector{T}"/>
/// after a real handoff and real drains: durations in seconds, Kestrel's and OpenTelemetry's attribute names, and how
/// every connection open at a drain's start ended.
/// </summary>
public class DeployMetricsTests
{
    [Fact]
    public async Task AHandoffAndTheWarmupAreMeasuredOnBothSidesWithKestrelsAttributes()
    {
        var port = PortAllocator.GetFreePort();
        InProcessServerOptions Options(string name) => new()
        {
            Name = name,
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        };

        await using var old = InProcessServer.Create(Options("old"));
        using var oldHandoff = Instruments.Histogram(old.MeterScope, Instruments.HandoffDuration);
        using var oldSockets = Instruments.Counter(old.MeterScope, Instruments.HandoffSockets);
        await old.StartAsync();
        await Eventually.UntilAsync(() => old.Logs.ReusePortEvents(10).Count > 0, TimeSpan.FromSeconds(10), "the old instance's offer");

        await using var next = InProcessServer.Create(Options("new"));
        using var handoffs = Instruments.Histogram(next.MeterScope, Instruments.HandoffDuration);
        using var sockets = Instruments.Counter(next.MeterScope, Instruments.HandoffSockets);
        using var warmups = Instruments.Histogram(next.MeterScope, Instruments.WarmupDuration);
        using var drains = Instruments.Histogram(next.MeterScope, Instruments.DrainDuration);
        using var drained = Instruments.Counter(next.MeterScope, Instruments.DrainConnections);
        using var listening = Instruments.Counter(next.MeterScope, Instruments.ListeningSockets);
        await next.StartAsync();

        var handoff = Assert.Single(handoffs.GetMeasurementSnapshot());
        Assert.Equal("taken_over", handoff.Tag("kestrel.reuseport.handoff.result"));
        AssertEndpointTags(handoff, port);
        Assert.InRange(handoff.Value, 0, 5);
        Assert.Equal(2, sockets.Sum("kestrel.reuseport.handoff.direction", "received"));
        await Eventually.UntilAsync(() => oldSockets.Sum("kestrel.reuseport.handoff.direction", "sent") == 2,
            TimeSpan.FromSeconds(10), "the old instance to count the sockets it sent");

        var warmup = Assert.Single(warmups.GetMeasurementSnapshot());
        AssertEndpointTags(warmup, port);
        Assert.Null(warmup.Tag("error.type"));

        // The old instance found nobody when it started: that is measured too, as such.
        Assert.Equal("no_running_instance", Assert.Single(oldHandoff.GetMeasurementSnapshot()).Tag("kestrel.reuseport.handoff.result"));

        // Units as Kestrel's meter writes them.
        Assert.Equal("s", handoffs.Instrument?.Unit);
        Assert.Equal("s", warmups.Instrument?.Unit);
        Assert.Equal("s", drains.Instrument?.Unit);
        Assert.Equal("{connection}", drained.Instrument?.Unit);
        Assert.Equal("{socket}", listening.Instrument?.Unit);
    }

    [Fact]
    public async Task ADrainCountsConnectionsToldToCloseAndThoseTheirClientsClosed()
    {
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            ConfigureReusePort = o =>
            {
                o.ListenerCount = 1;
                o.DrainTimeout = TimeSpan.FromSeconds(30);
            },
        });
        using var drained = Instruments.Counter(server.MeterScope, Instruments.DrainConnections);
        using var drains = Instruments.Histogram(server.MeterScope, Instruments.DrainDuration);
        await server.StartAsync();
        using var leaving = await RawHttpClient.ConnectAsync(server.EndPoint);
        using var staying = await RawHttpClient.ConnectAsync(server.EndPoint);
        await leaving.GetAsync("/", keepAlive: true);
        await staying.GetAsync("/", keepAlive: true);

        var transportDrain = server.App.Services.GetRequiredService<TransportDrain>();
        var stopping = server.StopAsync();
        await Eventually.UntilAsync(() => transportDrain.IsDraining, TimeSpan.FromSeconds(10), "the drain to start");

        // One client comes back and is told to go; the other leaves on its own.
        Assert.True((await staying.GetAsync("/", keepAlive: true)).ConnectionClose);
        leaving.Dispose();
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(1, drained.Sum("kestrel.reuseport.drain.outcome", "connection_close"));
        Assert.Equal(1, drained.Sum("kestrel.reuseport.drain.outcome", "client_closed"));
        Assert.Equal(2, drained.Sum());
        var drain = Assert.Single(drains.GetMeasurementSnapshot());
        Assert.Equal("completed", drain.Tag("kestrel.reuseport.drain.result"));

        // The same in the log, which outlives a process that exits before any collector reads its meter.
        var ended = Assert.Single(server.Logs.ReusePortEvents(13));
        Assert.Equal(("1", "0", "1"), (ended.State("ConnectionClose"), ended.State("GoAway"), ended.State("ClientClosed")));
    }

    [Fact]
    public async Task AtTheDrainsBoundIdleConnectionsAreClosedAndRequestsStillRunningAtTheShutdownTimeoutAborted()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await using var server = InProcessServer.Create(new InProcessServerOptions
            {
                ConfigureReusePort = o =>
                {
                    o.ListenerCount = 1;
                    o.DrainTimeout = TimeSpan.FromSeconds(1);
                },
                ShutdownTimeout = TimeSpan.FromSeconds(3),
                ConfigureApp = app => app.MapGet("/endless", async (HttpContext context) =>
                {
                    started.TrySetResult();
                    await release.Task.WaitAsync(context.RequestAborted);
                    return "done";
                }),
            });
            using var drained = Instruments.Counter(server.MeterScope, Instruments.DrainConnections);
            using var drains = Instruments.Histogram(server.MeterScope, Instruments.DrainDuration);
            await server.StartAsync();
            using var idle = await RawHttpClient.ConnectAsync(server.EndPoint);
            await idle.GetAsync("/", keepAlive: true);
            using var running = await RawHttpClient.ConnectAsync(server.EndPoint);
            await running.SendGetAsync("/endless", keepAlive: true);
            await started.Task.WaitAsync(TimeSpan.FromSeconds(10));

            await server.StopAsync();

            Assert.Equal(1, drained.Sum("kestrel.reuseport.drain.outcome", "closed_idle"));
            Assert.Equal(1, drained.Sum("kestrel.reuseport.drain.outcome", "aborted"));
            Assert.Equal("timed_out", Assert.Single(drains.GetMeasurementSnapshot()).Tag("kestrel.reuseport.drain.result"));
            var bound = Assert.Single(server.Logs.ReusePortEvents(18));
            Assert.Equal(("2", "1"), (bound.State("ConnectionCount"), bound.State("BusyCount")));
            var shutdown = Assert.Single(server.Logs.ReusePortEvents(32));
            Assert.Equal(("1", "0", "1"), (shutdown.State("ClosedIdle"), shutdown.State("Finished"), shutdown.State("Aborted")));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    private static void AssertEndpointTags(CollectedMeasurement<double> measurement, int port)
    {
        Assert.Equal("127.0.0.1", measurement.Tag("server.address"));
        Assert.Equal(port, measurement.Tag("server.port"));
        Assert.Equal("ipv4", measurement.Tag("network.type"));
        Assert.Equal("tcp", measurement.Tag("network.transport"));
    }
}
