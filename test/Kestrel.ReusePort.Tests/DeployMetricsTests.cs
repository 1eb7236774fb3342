using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// How a deploy went, in the <c>Kestrel.ReusePort</c> meter, read with a <see cref="System.Diagnostics.Metrics.MeterListener"/>
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
        using var oldMetrics = new MetricRecorder(old.MeterScope);
        await old.StartAsync();
        await Eventually.UntilAsync(() => old.Logs.ReusePortEvents(10).Count > 0, TimeSpan.FromSeconds(10), "the old instance's offer");

        await using var next = InProcessServer.Create(Options("new"));
        using var newMetrics = new MetricRecorder(next.MeterScope);
        await next.StartAsync();

        var handoff = Assert.Single(newMetrics.Measurements(MetricRecorder.HandoffDuration));
        Assert.Equal("taken_over", handoff.Tag("kestrel.reuseport.handoff.result"));
        AssertEndpointTags(handoff, port);
        Assert.InRange(handoff.Value, 0, 5);
        Assert.Equal(2, newMetrics.Sum(MetricRecorder.HandoffSockets, m => (string?)m.Tag("kestrel.reuseport.handoff.direction") == "received"));
        await Eventually.UntilAsync(() => oldMetrics.Sum(MetricRecorder.HandoffSockets, m => (string?)m.Tag("kestrel.reuseport.handoff.direction") == "sent") == 2,
            TimeSpan.FromSeconds(10), "the old instance to count the sockets it sent");

        var warmup = Assert.Single(newMetrics.Measurements(MetricRecorder.WarmupDuration));
        AssertEndpointTags(warmup, port);
        Assert.Null(warmup.Tag("error.type"));

        // The old instance found nobody when it started: that is measured too, as such.
        Assert.Equal("no_running_instance", Assert.Single(oldMetrics.Measurements(MetricRecorder.HandoffDuration)).Tag("kestrel.reuseport.handoff.result"));

        // Units as Kestrel's meter writes them.
        Assert.Equal("s", newMetrics.Units[MetricRecorder.HandoffDuration]);
        Assert.Equal("s", newMetrics.Units[MetricRecorder.WarmupDuration]);
        Assert.Equal("s", newMetrics.Units[MetricRecorder.DrainDuration]);
        Assert.Equal("{connection}", newMetrics.Units[MetricRecorder.DrainConnections]);
        Assert.Equal("{socket}", newMetrics.Units[MetricRecorder.ListeningSockets]);
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
        using var metrics = new MetricRecorder(server.MeterScope);
        await server.StartAsync();
        using var leaving = await RawHttpClient.ConnectAsync(server.EndPoint);
        using var staying = await RawHttpClient.ConnectAsync(server.EndPoint);
        await leaving.GetAsync("/", keepAlive: true);
        await staying.GetAsync("/", keepAlive: true);

        var factory = server.App.Services.GetRequiredService<ReusePortSocketTransportFactory>();
        var stopping = server.StopAsync();
        await Eventually.UntilAsync(() => factory.IsDraining, TimeSpan.FromSeconds(10), "the drain to start");

        // One client comes back and is told to go; the other leaves on its own.
        Assert.True((await staying.GetAsync("/", keepAlive: true)).ConnectionClose);
        leaving.Dispose();
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(1, metrics.Sum(MetricRecorder.DrainConnections, m => (string?)m.Tag("kestrel.reuseport.drain.outcome") == "connection_close"));
        Assert.Equal(1, metrics.Sum(MetricRecorder.DrainConnections, m => (string?)m.Tag("kestrel.reuseport.drain.outcome") == "client_closed"));
        Assert.Equal(2, metrics.Sum(MetricRecorder.DrainConnections));
        var drain = Assert.Single(metrics.Measurements(MetricRecorder.DrainDuration));
        Assert.Equal("completed", drain.Tag("kestrel.reuseport.drain.result"));

        // The same in the log, which outlives a process that exits before any collector reads its meter.
        Assert.Contains("with 0 connections still open: 1 answered with Connection: close, 0 sent GOAWAY, 1 closed by their clients.",
            Assert.Single(server.Logs.ReusePortEvents(13)).Message, StringComparison.Ordinal);
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
            using var metrics = new MetricRecorder(server.MeterScope);
            await server.StartAsync();
            using var idle = await RawHttpClient.ConnectAsync(server.EndPoint);
            await idle.GetAsync("/", keepAlive: true);
            using var running = await RawHttpClient.ConnectAsync(server.EndPoint);
            await running.SendGetAsync("/endless", keepAlive: true);
            await started.Task.WaitAsync(TimeSpan.FromSeconds(10));

            await server.StopAsync();

            Assert.Equal(1, metrics.Sum(MetricRecorder.DrainConnections, m => (string?)m.Tag("kestrel.reuseport.drain.outcome") == "closed_idle"));
            Assert.Equal(1, metrics.Sum(MetricRecorder.DrainConnections, m => (string?)m.Tag("kestrel.reuseport.drain.outcome") == "aborted"));
            Assert.Equal("timed_out", Assert.Single(metrics.Measurements(MetricRecorder.DrainDuration)).Tag("kestrel.reuseport.drain.result"));
            var bound = Assert.Single(server.Logs.ReusePortEvents(18));
            Assert.Contains("with 2 connections still open (1 with a request in flight)", bound.Message, StringComparison.Ordinal);
            Assert.Contains("Kestrel's shutdown closed 1 idle connections, 0 finished their last request, and 1 were aborted at HostOptions.ShutdownTimeout",
                Assert.Single(server.Logs.ReusePortEvents(32)).Message, StringComparison.Ordinal);
        }
        finally
        {
            release.TrySetResult();
        }
    }

    private static void AssertEndpointTags(RecordedMeasurement measurement, int port)
    {
        Assert.Equal("127.0.0.1", measurement.Tag("server.address"));
        Assert.Equal(port, measurement.Tag("server.port"));
        Assert.Equal("ipv4", measurement.Tag("network.type"));
        Assert.Equal("tcp", measurement.Tag("network.transport"));
    }
}
