using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// Under systemd's Type=notify, with or without UseSystemd(): READY=1 once warm and accepting (never twice),
/// STOPPING=1 on SIGTERM, and STATUS= lines during the drain. The tests play systemd's notification socket.
/// </summary>
public class ReadinessTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task SystemdHearsReadyOnceAcceptingThenStoppingThenHowTheDrainGoes()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var notify = new NotifySocket();
        var pid = 0;
        int? socketsHeldAtReady = null;
        notify.OnMessage = message =>
        {
            // What a deploy tool would see the moment it hears READY=1: this instance holds the port's sockets.
            if (message.Contains("READY=1", StringComparison.Ordinal))
            {
                socketsHeldAtReady = ListeningSockets.HeldBy(pid, port).Count;
            }
        };

        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2"],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path });
        pid = app.Pid;
        var ready = await notify.WaitForAsync(m => m.Contains("READY=1", StringComparison.Ordinal), s_timeout, "READY=1");
        Assert.Equal(2, socketsHeldAtReady);
        Assert.Contains($"STATUS=Serving 127.0.0.1:{port} with its own sockets", ready, StringComparison.Ordinal);
        await app.WaitUntilServingAsync(endPoint);

        // An idle keep-alive client, so that the drain has something to report; it leaves once the drain is under way.
        using (var client = await RawHttpClient.ConnectAsync(endPoint))
        {
            await client.GetAsync("/", keepAlive: true);
            app.SignalTerm();
            await notify.WaitForAsync(m => m.Contains("STOPPING=1", StringComparison.Ordinal), s_timeout, "STOPPING=1");
            await notify.WaitForAsync(m => m.StartsWith("STATUS=Draining 1 connections", StringComparison.Ordinal), s_timeout, "the drain's status");
        }

        await notify.WaitForAsync(m => m.StartsWith("STATUS=Drained", StringComparison.Ordinal), s_timeout, "the end of the drain");
        Assert.Equal(0, await app.WaitForExitAsync(s_timeout));

        var messages = notify.Messages.ToList();
        var readyAt = Assert.Single(messages.Select((m, i) => (m, i)), x => x.m.Contains("READY=1", StringComparison.Ordinal)).i;
        var stoppingAt = Assert.Single(messages.Select((m, i) => (m, i)), x => x.m.Contains("STOPPING=1", StringComparison.Ordinal)).i;
        var drainingAt = messages.FindIndex(m => m.StartsWith("STATUS=Draining", StringComparison.Ordinal));
        var drainedAt = messages.FindIndex(m => m.StartsWith("STATUS=Drained", StringComparison.Ordinal));
        Assert.True(readyAt < stoppingAt && stoppingAt < drainingAt && drainingAt < drainedAt, string.Join(" | ", messages));
    }

    [Fact]
    public async Task AnInstanceThatTookTheSocketsOverSaysFromWhomAtAnAbstractNotifySocket()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var old = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=2"], "old");

        using var notify = new NotifySocket(abstractName: true);
        using var next = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2"],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path }, name: "new");
        var ready = await notify.WaitForAsync(m => m.Contains("READY=1", StringComparison.Ordinal), s_timeout, "READY=1");
        Assert.Contains($"STATUS=Serving 127.0.0.1:{port} with sockets taken over from process {old.Pid}", ready, StringComparison.Ordinal);
        Assert.True(next.HasEvent(1, e => e["InheritedCount"] == "2"), next.Output);
    }
}
