using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// The sample published with NativeAOT (<c>dotnet publish sample/WebApp -c Release -r linux-x64 -p:PublishAot=true</c>)
/// deploys like the JIT build: it takes the sockets over from a running instance under load, across the JIT/AOT
/// boundary both ways, and warms up, tells systemd READY=1 and drains as the JIT build does. Real processes, real load.
/// </summary>
public class NativeAotTests(ITestOutputHelper output)
{
    private const int HandoffReceived = 6;
    private const int HandoffFailed = 7;
    private const int HandoffSent = 8;
    private const int DrainStarted = 12;
    private const int DrainEnded = 13;
    private const int WarmedUp = 19;
    private const int WarmupFailed = 20;

    private static readonly TimeSpan s_timeout = SampleProcess.StartTimeout;
    private static readonly string[] s_arguments = ["--ReusePort:ListenerCount=2"];

    [NativeAotTheory]
    [InlineData(SampleBuild.NativeAot, SampleBuild.NativeAot, LoadMode.KeepAlive)]
    [InlineData(SampleBuild.NativeAot, SampleBuild.NativeAot, LoadMode.Churn)]
    [InlineData(SampleBuild.Jit, SampleBuild.NativeAot, LoadMode.Churn)]
    [InlineData(SampleBuild.NativeAot, SampleBuild.Jit, LoadMode.Churn)]
    public async Task ANewInstanceTakesTheSocketsOverUnderLoadWithNoErrors(SampleBuild from, SampleBuild to, LoadMode mode)
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, $"old ({from})", nativeExecutable: await ExecutableAsync(from));
        await using var load = LoadGenerator.Start(endPoint, mode);
        await load.WaitForMoreRequestsAsync(200, s_timeout);

        using var next = SampleProcess.Start($"http://127.0.0.1:{port}", s_arguments, name: $"new ({to})", nativeExecutable: await ExecutableAsync(to));
        await next.WaitForEventAsync(HandoffReceived, s_timeout);
        await next.WaitUntilStartedAsync();
        Assert.Equal(0, next.CountEvents(HandoffFailed));
        await load.WaitForMoreRequestsAsync(100, s_timeout);

        old.SignalTerm();
        Assert.Equal(0, await old.WaitForExitAsync(s_timeout));
        Assert.Equal(1, old.CountEvents(HandoffSent));
        Assert.Equal(1, old.CountEvents(DrainEnded));
        await load.WaitForMoreRequestsAsync(100, s_timeout);

        var result = await load.StopAsync();
        output.WriteLine($"{from} -> {to}, {mode}: {result}");
        Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());
        Assert.True(result.RequestsByPid.ContainsKey(old.Pid) && result.RequestsByPid.ContainsKey(next.Pid), result.ToString());

        // The port's two sockets are the ones the old instance opened, now held by the new one alone.
        var description = ListeningSockets.Describe(port, next.Pid);
        Assert.True(ListeningSockets.OnPort(port).Count == 2, description);
        Assert.True(ListeningSockets.HeldBy(next.Pid, port).Count == 2, description);
    }

    [NativeAotFact]
    public async Task WarmsUpSaysReadyOnceAcceptingAndDrainsLikeTheJitBuild()
    {
        var executable = await NativeAotSample.PublishAsync();
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var notify = new NotifySocket();
        var pid = 0;
        int? socketsHeldAtReady = null;
        notify.OnMessage = message =>
        {
            if (message.Contains("READY=1", StringComparison.Ordinal))
            {
                socketsHeldAtReady = ListeningSockets.HeldBy(pid, port).Count;
            }
        };

        using var app = SampleProcess.Start(
            $"http://127.0.0.1:{port}",
            [.. s_arguments, "--ReusePort:DrainTimeout=00:00:20"],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path },
            nativeExecutable: executable);
        pid = app.Pid;
        await notify.WaitForAsync(m => m.Contains("READY=1", StringComparison.Ordinal), s_timeout, "READY=1");
        Assert.Equal(2, socketsHeldAtReady);
        await app.WaitForEventAsync(WarmedUp, s_timeout);
        Assert.Equal(0, app.CountEvents(WarmupFailed));
        await app.WaitUntilServingAsync(endPoint);

        using var client = await RawHttpClient.ConnectAsync(endPoint);
        var first = await client.GetAsync("/", keepAlive: true);
        Assert.Equal(pid, first.RequirePid());
        Assert.False(first.ConnectionClose);

        // Draining: the idle keep-alive client is still served, with Connection: close, and the drain then ends.
        app.SignalTerm();
        await notify.WaitForAsync(m => m.Contains("STOPPING=1", StringComparison.Ordinal), s_timeout, "STOPPING=1");
        await app.WaitForEventAsync(DrainStarted, s_timeout);
        var last = await client.GetAsync("/", keepAlive: true);
        Assert.Equal(200, last.StatusCode);
        Assert.True(last.ConnectionClose, "A draining instance must answer Connection: close.");
        await app.WaitForEventAsync(DrainEnded, s_timeout);
        Assert.Equal(0, await app.WaitForExitAsync(s_timeout));

        var messages = notify.Messages.ToList();
        var readyAt = Assert.Single(messages.Select((m, i) => (m, i)), x => x.m.Contains("READY=1", StringComparison.Ordinal)).i;
        var stoppingAt = Assert.Single(messages.Select((m, i) => (m, i)), x => x.m.Contains("STOPPING=1", StringComparison.Ordinal)).i;
        Assert.True(readyAt < stoppingAt, string.Join(" | ", messages));
    }

    private static async Task<string?> ExecutableAsync(SampleBuild build) =>
        build == SampleBuild.NativeAot ? await NativeAotSample.PublishAsync() : null;
}
