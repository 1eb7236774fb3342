using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// A deploy of two instances on one port, each with a notification socket of its own (as systemd gives each unit), for
/// an app without <c>UseSystemd()</c> (the sample), one with <c>UseSystemd()</c> from Microsoft.Extensions.Hosting.Systemd
/// 10 and one with 11. Each instance tells its socket READY=1 exactly once, while it holds the port's sockets;
/// STOPPING=1 on SIGTERM; and STATUS= lines during its drain, whoever sends READY=1 and STOPPING=1.
/// </summary>
/// <remarks>
/// Hosting.Systemd 10 turns <c>UseSystemd()</c> on only under systemd (its parent process is named systemd), so that app
/// runs under a parent of that name, and the host's <c>SystemdLifetime</c> sends READY=1 and STOPPING=1. Hosting.Systemd
/// 11 turns it on whenever <c>NOTIFY_SOCKET</c> is set, and removes the variable from the environment once its notifier
/// exists: the library's STATUS= lines still come, through the host's notifier.
/// </remarks>
public class SystemdDeployTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>Plays systemd as the parent: its name is systemd, it passes SIGTERM on and exits as the app did.</summary>
    private const string SystemdParent = """
        $0 = "systemd";
        my $pid = fork(); die "fork: $!" unless defined $pid;
        if ($pid == 0) { exec { $ARGV[0] } @ARGV or die "exec: $!"; }
        $SIG{TERM} = sub { kill "TERM", $pid };
        while (waitpid($pid, 0) == -1 && $!{EINTR}) {}
        exit($? & 127 ? 128 + ($? & 127) : $? >> 8);
        """;

    public static TheoryData<string> Apps => new() { "WebApp", "Systemd10App", "Systemd11App" };

    [Theory]
    [MemberData(nameof(Apps))]
    public async Task EachInstanceTellsSystemdReadyOnceWhenAcceptingThenStoppingThenHowItsDrainGoes(string app)
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var oldNotify = new NotifySocket();
        using var newNotify = new NotifySocket();

        using var old = new Instance(app, port, oldNotify, "old");
        await oldNotify.WaitForAsync(IsReady, s_timeout, "READY=1 from the old instance");
        await old.Process.WaitUntilServingAsync(endPoint);
        await Rendezvous.WaitUntilOfferedAsync(old.Process, $"127.0.0.1:{port}");

        // An idle keep-alive client of the old instance, so that its drain has something to report.
        using (var client = await RawHttpClient.ConnectAsync(endPoint))
        {
            await client.GetAsync("/", keepAlive: true);

            using var next = new Instance(app, port, newNotify, "new");
            await newNotify.WaitForAsync(IsReady, s_timeout, "READY=1 from the new instance");

            old.Process.SignalTerm();
            await oldNotify.WaitForAsync(IsStopping, s_timeout, "STOPPING=1 from the old instance");
            await oldNotify.WaitForAsync(m => HasLine(m, "STATUS=Draining 1 connections"), s_timeout, "the old instance's drain status");
            client.Dispose();
            await oldNotify.WaitForAsync(m => HasLine(m, "STATUS=Drained"), s_timeout, "the end of the old instance's drain");
            Assert.Equal(0, await old.Process.WaitForExitAsync(s_timeout));

            next.Process.SignalTerm();
            await newNotify.WaitForAsync(IsStopping, s_timeout, "STOPPING=1 from the new instance");
            Assert.Equal(0, await next.Process.WaitForExitAsync(s_timeout));

            var oldCounts = Count(oldNotify.Messages);
            var newCounts = Count(newNotify.Messages);
            output.WriteLine($"{app}: old instance {oldCounts}; new instance {newCounts}");
            output.WriteLine($"old: {string.Join(" | ", oldNotify.Messages)}");
            output.WriteLine($"new: {string.Join(" | ", newNotify.Messages)}");

            foreach (var (instance, counts, notify) in new[] { (old, oldCounts, oldNotify), (next, newCounts, newNotify) })
            {
                var messages = string.Join(" | ", notify.Messages);
                Assert.True(counts.Ready == 1, $"{instance.Process}: {counts}: {messages}");
                Assert.True(counts.Stopping == 1, $"{instance.Process}: {counts}: {messages}");
                Assert.True(instance.SocketsHeldAtReady == 2, $"{instance.Process} held {instance.SocketsHeldAtReady} of the port's sockets at READY=1: {messages}");

                // With UseSystemd() the host's own lifetime sends READY=1 (a datagram of its own), else the library does.
                Assert.True((app != "WebApp") == notify.Messages.Contains("READY=1"), $"{instance.Process}: {messages}");
            }

            // "Stopping", "Draining 1 connections …", "Drained".
            Assert.True(oldCounts.StatusDuringDrain >= 3, $"{oldCounts}: {string.Join(" | ", oldNotify.Messages)}");
        }
    }

    private static bool IsReady(string message) => HasLine(message, "READY=1");

    private static bool IsStopping(string message) => HasLine(message, "STOPPING=1");

    private static bool HasLine(string message, string prefix) => message.Split('\n').Any(l => l.StartsWith(prefix, StringComparison.Ordinal));

    private static NotifyCounts Count(IReadOnlyList<string> messages)
    {
        // SIGTERM's first trace is STOPPING=1 or the library's "Stopping" status, whichever was sent first.
        var lines = messages.SelectMany(m => m.Split('\n')).ToList();
        var stoppingAt = lines.FindIndex(l => l == "STOPPING=1" || l.StartsWith("STATUS=Stopping", StringComparison.Ordinal));
        return new NotifyCounts(
            lines.Count(l => l == "READY=1"),
            lines.Count(l => l == "STOPPING=1"),
            lines.Count(l => l.StartsWith("STATUS=", StringComparison.Ordinal)),
            stoppingAt < 0 ? 0 : lines.Skip(stoppingAt).Count(l => l.StartsWith("STATUS=", StringComparison.Ordinal)));
    }

    private sealed record NotifyCounts(int Ready, int Stopping, int Status, int StatusDuringDrain)
    {
        public override string ToString() => $"READY=1 x{Ready}, STOPPING=1 x{Stopping}, STATUS= x{Status} ({StatusDuringDrain} from SIGTERM on)";
    }

    /// <summary>One instance of the app, with what it held of the port the moment its READY=1 arrived.</summary>
    private sealed class Instance : IDisposable
    {
        private readonly bool _underSystemdParent;

        public Instance(string app, int port, NotifySocket notify, string name)
        {
            _underSystemdParent = app == "Systemd10App";
            notify.OnMessage = message =>
            {
                if (IsReady(message))
                {
                    SocketsHeldAtReady = ListeningSockets.HeldBy(AppPid, port).Count;
                }
            };
            Process = SampleProcess.Start(
                $"http://127.0.0.1:{port}",
                ["--ReusePort:ListenerCount=2"],
                new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path },
                name: $"{app} ({name})",
                wrapper: _underSystemdParent ? ["/usr/bin/perl", "-e", SystemdParent] : null,
                assembly: app == "WebApp" ? null : RepoPaths.TestAppAssembly(app));
        }

        public SampleProcess Process { get; }

        public int? SocketsHeldAtReady { get; private set; }

        /// <summary>The app's own pid: under the systemd-named parent, that parent's one child.</summary>
        private int AppPid => _underSystemdParent
            ? int.Parse(File.ReadAllText($"/proc/{Process.Pid}/task/{Process.Pid}/children").Trim(), System.Globalization.CultureInfo.InvariantCulture)
            : Process.Pid;

        public void Dispose() => Process.Dispose();
    }
}
