using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// The sample's OpenTelemetry (sample/WebApp/Telemetry.cs, off unless configured) across a real deploy: the old instance
/// pushes over OTLP/HTTP to a receiver of the test's own, to the end of its drain (its last export is made while its
/// host stops, after the drain); the new one serves its meters at <c>/metrics</c> for Prometheus and pushes them too.
/// The deploy instruments are read as OpenTelemetry exported them: names, units, attributes and values.
/// </summary>
public class OpenTelemetryTests(ITestOutputHelper output)
{
    private const string HandoffDuration = "kestrel.reuseport.handoff.duration";
    private const string HandoffSockets = "kestrel.reuseport.handoff.sockets";
    private const string WarmupDuration = "kestrel.reuseport.warmup.duration";
    private const string DrainDuration = "kestrel.reuseport.drain.duration";
    private const string DrainConnections = "kestrel.reuseport.drain.connections";
    private const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";
    private const int DrainStarted = 12;

    [Fact]
    public async Task ADeployIsExportedThroughOpenTelemetryWithItsAttributes()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        string[] Arguments(string instance) =>
        [
            "--ReusePort:ListenerCount=2",
            "--ReusePort:DrainTimeout=00:00:30",
            "--Telemetry:Prometheus=true",
            $"--Telemetry:Otlp:Endpoint={receiver.Endpoint(instance)}",
            "--Telemetry:Otlp:Protocol=http/protobuf",
            "--Telemetry:Otlp:ExportIntervalMilliseconds=1000",
        ];

        using var old = await SampleProcess.StartRunningAsync(port, Arguments("old"), "old");

        // A keep-alive connection of the old instance's, opened before the new one shares the sockets: the drain waits
        // for it, and the request sent on it during the drain is answered with Connection: close.
        using var held = await RawHttpClient.ConnectAsync(endPoint);
        Assert.Equal(old.Pid, (await held.GetAsync("/", keepAlive: true)).RequirePid());

        using var next = SampleProcess.Start($"http://127.0.0.1:{port}", Arguments("new"), name: "new");
        await next.WaitUntilStartedAsync();
        old.SignalTerm();
        await old.WaitForEventAsync(DrainStarted, SampleProcess.StartTimeout);
        Assert.True((await held.GetAsync("/", keepAlive: true)).ConnectionClose);
        Assert.Equal(0, await old.WaitForExitAsync(SampleProcess.StartTimeout));

        // The old instance: its drain, exported while its host stopped, after the drain ended.
        output.WriteLine($"OTLP, old instance (pid {old.Pid}): {receiver.Describe("old")}");
        var drained = receiver.Latest("old", DrainConnections);
        Assert.True(drained.Count > 0, receiver.Describe("old"));
        Assert.All(drained, p => Assert.Equal(("sum", "{connection}"), (p.Kind, p.Unit)));
        Assert.Equal(1, drained.Where(p => (string?)p.Attribute("kestrel.reuseport.drain.outcome") == "connection_close").Sum(p => p.Value));
        Assert.Equal(0, drained.Where(p => (string?)p.Attribute("kestrel.reuseport.drain.outcome") == "aborted").Sum(p => p.Value));
        var drain = Assert.Single(receiver.Latest("old", DrainDuration));
        Assert.Equal(("histogram", "s", 1UL, "completed"), (drain.Kind, drain.Unit, drain.Count, (string?)drain.Attribute("kestrel.reuseport.drain.result")));
        Assert.Equal("no_running_instance", (string?)Assert.Single(receiver.Latest("old", HandoffDuration)).Attribute("kestrel.reuseport.handoff.result"));
        Assert.Equal(2, receiver.Latest("old", HandoffSockets).Where(p => (string?)p.Attribute("kestrel.reuseport.handoff.direction") == "sent").Sum(p => p.Value));
        Assert.Contains(receiver.Latest("old", "kestrel.connection.duration"), p => p.Scope == KestrelMeter && p.Count > 0);

        // The new instance, alone on the port now: its takeover and warm-up, over OTLP. It warms up before it takes the
        // sockets over, so an export made between the two holds the warm-up alone: wait for one that holds both.
        await Eventually.UntilAsync(
            () => receiver.Latest("new", WarmupDuration).Count > 0 && receiver.Latest("new", HandoffDuration).Count > 0,
            SampleProcess.StartTimeout,
            "the new instance's OTLP export of its warm-up and takeover");
        output.WriteLine($"OTLP, new instance (pid {next.Pid}): {receiver.Describe("new")}");
        var handoff = Assert.Single(receiver.Latest("new", HandoffDuration));
        Assert.Equal(("histogram", "s", 1UL), (handoff.Kind, handoff.Unit, handoff.Count));
        Assert.Equal("taken_over", handoff.Attribute("kestrel.reuseport.handoff.result"));
        Assert.Equal(("127.0.0.1", (object)(long)port, "ipv4", "tcp"),
            (handoff.Attribute("server.address"), handoff.Attribute("server.port"), handoff.Attribute("network.type"), handoff.Attribute("network.transport")));
        var warmup = Assert.Single(receiver.Latest("new", WarmupDuration));
        Assert.Equal(("histogram", "s", 1UL, "127.0.0.1", (object?)null), (warmup.Kind, warmup.Unit, warmup.Count, warmup.Attribute("server.address"), warmup.Attribute("error.type")));
        Assert.Equal(2, receiver.Latest("new", HandoffSockets).Where(p => (string?)p.Attribute("kestrel.reuseport.handoff.direction") == "received").Sum(p => p.Value));

        // ... and as Prometheus scrapes it from /metrics.
        var scrape = await RawHttpClient.GetAsync(endPoint, "/metrics");
        Assert.Equal(200, scrape.StatusCode);
        var samples = PrometheusSample.Parse(scrape.Body);
        output.WriteLine($"Prometheus, new instance, GET /metrics:\n  {string.Join("\n  ", samples.Where(s => s.Name.StartsWith("kestrel_reuseport_", StringComparison.Ordinal) && !s.Name.EndsWith("_bucket", StringComparison.Ordinal)))}");
        var scraped = Assert.Single(samples, s => s.Name == "kestrel_reuseport_handoff_duration_seconds_count");
        Assert.Equal(("taken_over", port.ToString(System.Globalization.CultureInfo.InvariantCulture), 1d),
            (scraped.Label("kestrel_reuseport_handoff_result"), scraped.Label("server_port"), scraped.Value));
        Assert.Equal(1, Assert.Single(samples, s => s.Name == "kestrel_reuseport_warmup_duration_seconds_count").Value);
        Assert.Contains(samples, s => s.Name.StartsWith("kestrel_connection_duration_seconds", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithoutTheSwitchTheSampleLoadsNoOpenTelemetryAndServesNoMetrics()
    {
        var port = PortAllocator.GetFreePort();
        using var app = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=1"], "without telemetry");

        Assert.Equal(404, (await RawHttpClient.GetAsync(new IPEndPoint(IPAddress.Loopback, port), "/metrics")).StatusCode);
        var maps = await File.ReadAllTextAsync($"/proc/{app.Pid}/maps");
        Assert.Contains("WebApp.dll", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("OpenTelemetry", maps, StringComparison.Ordinal);
    }
}
