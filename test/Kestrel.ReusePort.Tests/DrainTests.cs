using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// A draining instance never closes an idle keep-alive connection sooner than a running Kestrel would; it answers
/// the next request on it with Connection: close. A hard bound ends the drain and says what was left; long-lived
/// requests end gracefully through <see cref="IReusePortLifetime.Draining"/>.
/// </summary>
public class DrainTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(40);

    [Fact]
    public async Task AnIdleKeepAliveConnectionIsClosedNoSoonerThanKestrelsKeepAliveTimeout()
    {
        const int KeepAliveSeconds = 6;
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        string[] arguments = ["--ReusePort:ListenerCount=2", $"--Kestrel:Limits:KeepAliveTimeout=00:00:0{KeepAliveSeconds}"];
        using var old = await SampleProcess.StartRunningAsync(port, arguments, "old");

        // Two pooled clients on the old instance, idle after one request each.
        using var idle = await RawHttpClient.ConnectAsync(endPoint);
        using var busy = await RawHttpClient.ConnectAsync(endPoint);
        var idleSince = Stopwatch.GetTimestamp();
        Assert.Equal(old.Pid, (await idle.GetAsync("/", keepAlive: true)).RequirePid());
        Assert.Equal(old.Pid, (await busy.GetAsync("/", keepAlive: true)).RequirePid());

        using var next = SampleProcess.Start(urls, arguments, name: "new");
        await next.WaitUntilStartedAsync();
        old.SignalTerm();
        await old.WaitForEventAsync(12, e => e["ListenerCount"] == "1", s_timeout);

        // One client sends its next request: answered, by the old instance, with Connection: close.
        var response = await busy.GetAsync("/", keepAlive: true);
        Assert.Equal(old.Pid, response.RequirePid());
        Assert.True(response.ConnectionClose, "A draining instance answers with Connection: close.");

        // The other stays idle: the server closes it as a running Kestrel would, KeepAliveTimeout after its last
        // request, and not at SIGTERM; the drain then ends with nothing left, and the old instance exits.
        await Eventually.UntilAsync(() => IsClosedByPeer(idle), s_timeout, "Kestrel's keep-alive timeout to close the idle connection", TimeSpan.FromMilliseconds(20));
        var idleFor = Stopwatch.GetElapsedTime(idleSince);
        output.WriteLine($"The idle connection was closed {idleFor.TotalSeconds:0.00} s after its request (KeepAliveTimeout {KeepAliveSeconds} s).");
        Assert.True(idleFor >= TimeSpan.FromSeconds(KeepAliveSeconds), $"closed after {idleFor.TotalSeconds:0.00} s");
        Assert.Equal(0, await old.WaitForExitAsync(s_timeout));
        Assert.True(old.HasEvent(13), old.Output);
    }

    [Fact]
    public async Task TheDrainsBoundEndsItAndSaysWhatWasStillOpen()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2", "--ReusePort:DrainTimeout=00:00:02"]);
        await app.WaitUntilServingAsync(endPoint);
        using var idle = await RawHttpClient.ConnectAsync(endPoint);
        await idle.GetAsync("/", keepAlive: true);

        var stopped = Stopwatch.GetTimestamp();
        app.SignalTerm();
        var bound = await app.WaitForEventAsync(18, _ => true, s_timeout);
        Assert.Equal((1, 0), (bound.Number("ConnectionCount"), bound.Number("BusyCount")));
        Assert.True(Stopwatch.GetElapsedTime(stopped) >= TimeSpan.FromSeconds(2));

        // Kestrel's shutdown closes what was left, and the instance exits.
        await Eventually.UntilAsync(() => IsClosedByPeer(idle), s_timeout, "the idle connection to be closed");
        Assert.Equal(0, await app.WaitForExitAsync(s_timeout));
    }

    [Fact]
    public async Task ByDefaultTheDrainsBoundIsTheHostsShutdownTimeoutLessKestrelsShare()
    {
        var port = PortAllocator.GetFreePort();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=1", "--shutdownTimeoutSeconds=9"]);
        await app.WaitUntilServingAsync(new IPEndPoint(IPAddress.Loopback, port));
        app.SignalTerm();
        var started = await app.WaitForEventAsync(12, _ => true, s_timeout);
        Assert.Equal(TimeSpan.FromSeconds(9) - TimeSpan.FromSeconds(2), TimeSpan.Parse(started["DrainTimeout"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, await app.WaitForExitAsync(s_timeout));
    }

    [Fact]
    public async Task AWebSocketIsClosedWithServiceRestartWhenItsInstanceDrains()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        using var old = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=2"], "old");

        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), CancellationToken.None);
        Assert.Equal($"Hello from pid {old.Pid}", await ReceiveTextAsync(socket));

        using var next = SampleProcess.Start(urls, ["--ReusePort:ListenerCount=2"], name: "new");
        await next.WaitUntilStartedAsync();
        old.SignalTerm();

        // A close frame with 1012 (Service Restart), not a reset: the client knows to reconnect.
        using var deadline = new CancellationTokenSource(s_timeout);
        var closing = await socket.ReceiveAsync(new byte[64], deadline.Token);
        Assert.Equal(WebSocketMessageType.Close, closing.MessageType);
        Assert.Equal((WebSocketCloseStatus)1012, closing.CloseStatus);
        Assert.Equal("Service Restart", closing.CloseStatusDescription);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, deadline.Token);

        // The old instance leaves as soon as its last connection is gone; the reconnection reaches the new one.
        Assert.Equal(0, await old.WaitForExitAsync(s_timeout));
        using var again = new ClientWebSocket();
        await again.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), deadline.Token);
        Assert.Equal($"Hello from pid {next.Pid}", await ReceiveTextAsync(again));
    }

    private static async Task<string> ReceiveTextAsync(ClientWebSocket socket)
    {
        var buffer = new byte[256];
        using var deadline = new CancellationTokenSource(s_timeout);
        var received = await socket.ReceiveAsync(buffer, deadline.Token);
        return Encoding.UTF8.GetString(buffer, 0, received.Count);
    }

    /// <summary>Whether the server has closed the connection: readable with nothing to read.</summary>
    private static bool IsClosedByPeer(RawHttpClient client)
    {
        var socket = client.Socket;
        return socket.Poll(0, System.Net.Sockets.SelectMode.SelectRead) && socket.Available == 0;
    }
}
