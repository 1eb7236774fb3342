using System.Diagnostics;
using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// A broken release never takes the port: started over a working instance under load, a release whose warm-up gets a
/// 500, no answer in time, or kills it, leaves the port alone and exits non-zero, and the clients see nothing; the next,
/// good release still deploys. A first start serves anyway, and so does a release told to (Warmup.ServeOnFailure).
/// The sample plays the broken release with WEBAPP_FAULT.
/// </summary>
public class BrokenReleaseTests(ITestOutputHelper output)
{
    private const int Listeners = 2;
    private const int WarmupFailedPortLeft = 33;
    private const int WarmupFailedFirstStart = 34;
    private const int WarmupFailedServingAnyway = 35;
    private const int Listening = 1;
    private const int WarmedUp = 19;
    private const int WarmupFailed = 20;
    private const int HandoffReceived = 6;
    private const int HandoffSent = 8;

    private static readonly TimeSpan s_timeout = SampleProcess.StartTimeout;
    private static readonly string[] s_arguments = [$"--ReusePort:ListenerCount={Listeners}"];

    // The broken releases' warm-up gives up sooner than the default 10 s, so that the hanging one fails fast; the
    // healthy ones keep the default, which a cold start on a loaded machine needs.
    private static readonly string[] s_brokenArguments = [.. s_arguments, "--ReusePort:Warmup:Timeout=00:00:03"];

    [Theory]
    [InlineData("500")]
    [InlineData("hang")]
    [InlineData("crash")]
    public async Task ABrokenReleaseNeverTakesThePortAndTheNextGoodOneDeploys(string fault)
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");
        await using var load = LoadGenerator.Start(endPoint, LoadMode.Churn);
        await load.WaitForMoreRequestsAsync(50, s_timeout);

        using var notify = new NotifySocket();
        var requestsBefore = load.Requests;
        var started = Stopwatch.GetTimestamp();
        using var broken = SampleProcess.Start($"http://127.0.0.1:{port}", s_brokenArguments,
            new Dictionary<string, string?> { ["WEBAPP_FAULT"] = fault, ["NOTIFY_SOCKET"] = notify.Path }, name: $"broken ({fault})");
        var held = await WatchHeldUntilExitAsync(broken, port);
        var exitCode = broken.ExitCode;
        output.WriteLine($"{fault}: the broken release ran {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s, exit code {exitCode}, " +
            $"listening sockets of the port it held at most {held}; {load.Requests - requestsBefore} client requests meanwhile");

        Assert.True(exitCode != 0, $"A broken release must exit non-zero.\n{broken.Output}");
        Assert.True(held == 0, $"The broken release held {held} listening sockets of the port.\n{broken.Output}");
        Assert.Equal(0, broken.CountEvents(WarmedUp));
        Assert.Equal(0, broken.CountEvents(Listening));
        Assert.Equal(0, broken.CountEvents(HandoffReceived));
        Assert.DoesNotContain(notify.Messages, m => m.Contains("READY=1", StringComparison.Ordinal));
        if (fault != "crash")
        {
            // It got an answer it did not like, or none: it says why, to the log and to systemd, and leaves.
            Assert.Equal(1, broken.CountEvents(WarmupFailed));
            Assert.Equal(1, broken.CountEvents(WarmupFailedPortLeft));
            Assert.Contains(notify.Messages, m => m.StartsWith("STATUS=", StringComparison.Ordinal));
        }

        // The running instance never noticed: it handed nothing over, holds its sockets and goes on serving.
        Assert.False(old.HasExited, old.Output);
        Assert.Equal(0, old.CountEvents(HandoffSent));
        Assert.Equal(Listeners, ListeningSockets.HeldBy(old.Pid, port).Count);
        await load.WaitForMoreRequestsAsync(50, s_timeout);

        // The fix, deployed over it as usual: start, wait until it serves, stop the old one.
        using var good = SampleProcess.Start($"http://127.0.0.1:{port}", s_arguments, name: "good");
        await good.WaitUntilStartedAsync();
        Assert.Equal(1, good.CountEvents(HandoffReceived));
        old.SignalTerm();
        Assert.Equal(0, await old.WaitForExitAsync(s_timeout));
        await load.WaitForMoreRequestsAsync(50, s_timeout);

        var result = await load.StopAsync();
        output.WriteLine($"{fault}: {result}");
        Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());
        Assert.True(result.RequestsByPid.ContainsKey(good.Pid), result.ToString());
        Assert.False(result.RequestsByPid.ContainsKey(broken.Pid), result.ToString());
        Assert.Equal(Listeners, ListeningSockets.HeldBy(good.Pid, port).Count);
    }

    [Fact]
    public async Task WithSocketHandoffOffABrokenReleaseStillLeavesASharedPortAlone()
    {
        string[] arguments = [.. s_brokenArguments, "--ReusePort:SocketHandoff=false"];
        var port = PortAllocator.GetFreePort();
        using var old = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "old");
        await old.WaitUntilServingAsync(new IPEndPoint(IPAddress.Loopback, port));

        using var broken = SampleProcess.Start($"http://127.0.0.1:{port}", arguments,
            new Dictionary<string, string?> { ["WEBAPP_FAULT"] = "500" }, name: "broken");
        var held = await WatchHeldUntilExitAsync(broken, port);
        output.WriteLine($"SocketHandoff off: exit code {broken.ExitCode}, listening sockets held at most {held}");

        Assert.True(broken.ExitCode != 0, broken.Output);
        Assert.True(held == 0, $"The broken release held {held} listening sockets of the port.\n{broken.Output}");
        Assert.Equal(1, broken.CountEvents(WarmupFailedPortLeft));
        Assert.Equal(Listeners, ListeningSockets.OnPort(port).Count);
    }

    [Fact]
    public async Task AFirstStartWhoseWarmupFailsServesAnywayAndSaysSo()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var notify = new NotifySocket();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", s_brokenArguments,
            new Dictionary<string, string?> { ["WEBAPP_FAULT"] = "500", ["NOTIFY_SOCKET"] = notify.Path });

        await app.WaitForEventAsync(WarmupFailedFirstStart, s_timeout);
        await notify.WaitForAsync(m => m.Contains("READY=1", StringComparison.Ordinal), s_timeout, "READY=1");
        Assert.Equal(1, app.CountEvents(WarmupFailed));
        Assert.Equal(0, app.CountEvents(WarmupFailedPortLeft));
        Assert.Equal(Listeners, ListeningSockets.HeldBy(app.Pid, port).Count);
        Assert.Equal(500, (await RawHttpClient.GetAsync(endPoint)).StatusCode);
        Assert.False(app.HasExited);
    }

    [Fact]
    public async Task ServeOnFailureLetsAFailingReleaseTakeOver()
    {
        var port = PortAllocator.GetFreePort();
        using var old = await SampleProcess.StartRunningAsync(port, s_arguments, "old");
        using var next = SampleProcess.Start($"http://127.0.0.1:{port}", [.. s_arguments, "--ReusePort:Warmup:ServeOnFailure=true"],
            new Dictionary<string, string?> { ["WEBAPP_FAULT"] = "500" }, name: "new");

        await next.WaitUntilStartedAsync();
        Assert.Equal(1, next.CountEvents(WarmupFailedServingAnyway));
        Assert.Equal(0, next.CountEvents(WarmupFailedPortLeft));
        Assert.Equal(1, next.CountEvents(HandoffReceived));
        Assert.Equal(Listeners, ListeningSockets.HeldBy(next.Pid, port).Count);
        Assert.False(next.HasExited);
    }

    [Fact]
    public async Task A404FromTheWarmupIsNoFailure()
    {
        string[] arguments = [.. s_arguments, "--ReusePort:Warmup:Paths:0=/no-such-page"];
        var port = PortAllocator.GetFreePort();
        using var old = await SampleProcess.StartRunningAsync(port, arguments, "old");
        using var next = SampleProcess.Start($"http://127.0.0.1:{port}", arguments, name: "new");

        await next.WaitUntilStartedAsync();
        Assert.Equal(1, next.CountEvents(WarmedUp));
        Assert.Equal(0, next.CountEvents(WarmupFailed));
        Assert.Equal(1, next.CountEvents(HandoffReceived));
    }

    [Fact]
    public async Task TheRollingDeployScriptReportsABrokenReleaseAsAFailedDeployAndKeepsTheRunningInstance()
    {
        var port = PortAllocator.GetFreePort();
        var work = Directory.CreateTempSubdirectory("kestrel-reuseport-broken-deploy-").FullName;
        var pidfile = Path.Join(work, "app.pid");
        try
        {
            Assert.Equal(0, await DeployAsync(port, work, pidfile, "good", fault: null));
            var running = int.Parse(File.ReadAllText(pidfile).Trim(), System.Globalization.CultureInfo.InvariantCulture);

            // The script sees the broken release exit before READY=1: the deploy fails, and the running instance stays.
            Assert.Equal(1, await DeployAsync(port, work, pidfile, "broken", fault: "500"));
            Assert.Equal(running, int.Parse(File.ReadAllText(pidfile).Trim(), System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(ProcessState.IsRunning(running), $"the running instance {running} was stopped");
            Assert.Equal(Listeners, ListeningSockets.HeldBy(running, port).Count);
            Assert.Equal(Listeners, ListeningSockets.OnPort(port).Count);
        }
        finally
        {
            if (File.Exists(pidfile) && int.TryParse(File.ReadAllText(pidfile).Trim(), out var last))
            {
                LibC.Kill(last, LibC.SigTerm);
                await Eventually.UntilAsync(() => !ProcessState.IsRunning(last), TimeSpan.FromSeconds(40), "the last instance to exit");
            }

            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Runs sample/rolling-deploy.sh once, as an operator does; returns its exit code.</summary>
    private async Task<int> DeployAsync(int port, string work, string pidfile, string name, string? fault)
    {
        using var script = ChildProcess.Start(new ChildProcessStartInfo
        {
            FileName = "bash",
            Arguments = [Path.Join(RepoPaths.Root, "sample", "rolling-deploy.sh"), "--pidfile", pidfile, "--log", Path.Join(work, $"{name}.log"), "--",
                RepoPaths.DotnetHost, RepoPaths.SampleAssembly, "--urls", $"http://127.0.0.1:{port}", .. s_arguments],
            WorkingDirectory = RepoPaths.SampleDirectory,
            Environment = new Dictionary<string, string?> { ["WEBAPP_FAULT"] = fault },
            Name = $"rolling-deploy.sh ({name})",
        });
        var exitCode = await script.WaitForExitAsync(TimeSpan.FromSeconds(90));
        output.WriteLine($"rolling-deploy.sh ({name}): exit code {exitCode}\n{script.Output}");
        return exitCode;
    }

    /// <summary>
    /// Watches, until <paramref name="process"/> exits, how many of the port's listening sockets it holds; returns the
    /// most it was seen to hold. The samples only observe: the exit is what is waited for.
    /// </summary>
    private static async Task<int> WatchHeldUntilExitAsync(ChildProcess process, int port)
    {
        var most = 0;
        var exited = process.WaitForExitAsync(s_timeout);
        while (!exited.IsCompleted)
        {
            most = Math.Max(most, ListeningSockets.HeldBy(process.Pid, port).Count);
            await Task.WhenAny(exited, Task.Delay(5));
        }

        await exited;
        return most;
    }
}
