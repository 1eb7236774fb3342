using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using CountersSnapshot;
using Microsoft.Diagnostics.NETCore.Client;

// CountersSnapshot --pid PID [--meter Kestrel.ReusePort] [--seconds 3] [--interval 1] [--resume]
// The meter's instruments and time series as dotnet-counters would show them, read over EventPipe, as markdown.

const int BadArguments = 1;
const int Unreachable = 2;
const int NoInstrument = 3;
const int SessionRefused = 4;

var options = SnapshotOptions.Parse(args, out var argumentError);
if (options is null)
{
    if (argumentError is { Length: > 0 })
    {
        Console.Error.WriteLine($"CountersSnapshot: {argumentError}");
    }

    Console.Error.WriteLine(SnapshotOptions.Usage);
    return argumentError is { Length: 0 } ? 0 : BadArguments;
}

var pid = options.Pid;
var label = ProcessLabel(pid);
string? socket = null;
if (OperatingSystem.IsLinux())
{
    // A process just started with DOTNET_DefaultDiagnosticPortSuspend=1 may not have opened its socket yet.
    var endpoint = DiagnosticEndpoint.Resolve(pid);
    for (var tries = 0; endpoint.SocketPath is null && options.Resume && tries < 50 && Directory.Exists($"/proc/{pid}"); tries++)
    {
        Thread.Sleep(100);
        endpoint = DiagnosticEndpoint.Resolve(pid);
    }

    if (endpoint.SocketPath is null)
    {
        Console.Error.WriteLine($"CountersSnapshot: cannot reach pid {pid}{label}: {endpoint.Problem}.");
        return Unreachable;
    }

    socket = endpoint.SocketPath;
}

// Ctrl+C, SIGINT or SIGTERM end the session early; what was read is printed all the same (a script stops a snapshot
// at the moment it wants with kill -TERM, since a background job of a script ignores SIGINT).
using var cancel = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    cancel.Cancel();
}

using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

SessionResult result;
try
{
    // On Linux the socket found by its exact name (see DiagnosticEndpoint), elsewhere the client's own look-up.
    await using var connector = socket is null ? null
        : await DiagnosticsClientConnector.FromDiagnosticPort($"{socket},connect", cancel.Token).ConfigureAwait(false);
    var client = connector?.Instance ?? new DiagnosticsClient(pid);
    result = await MetricsSession.RunAsync(client, options, cancel.Token).ConfigureAwait(false);
}
catch (Exception ex) when (ex is ServerNotAvailableException or ServerErrorException or UnsupportedCommandException or UnsupportedProtocolException or DiagnosticsClientException or UnauthorizedAccessException or IOException or System.Net.Sockets.SocketException or TimeoutException)
{
    Console.Error.WriteLine($"CountersSnapshot: cannot open an EventPipe session to pid {pid}{label}: {ex.GetType().Name}: {ex.Message}");
    return Unreachable;
}

MarkdownReport.Write(Console.Out, options, label, result);

if (result.Snapshot.RefusedByRunningSession is { } running && !result.Snapshot.Instruments.Any())
{
    Console.Error.WriteLine(
        $"CountersSnapshot: pid {pid} already runs a metrics session ({(running.Length == 0 ? "unnamed" : running)}: dotnet-counters, dotnet-monitor " +
        "or another CountersSnapshot); MetricsEventSource serves one at a time. Stop it and try again.");
    return SessionRefused;
}

if (!result.Snapshot.Instruments.Any())
{
    Console.Error.WriteLine(
        $"CountersSnapshot: no instrument of meter '{options.Meter}' was reported by pid {pid} in {result.Listened.TotalSeconds:0.0} s " +
        $"({result.Snapshot.Intervals} intervals): the process does not create that meter, or has not yet.");
    return NoInstrument;
}

return 0;

// " (dotnet WebApp.dll --urls ...)" from /proc, or "" where it cannot be read.
static string ProcessLabel(int pid)
{
    try
    {
        var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        return cmdline.Length == 0 ? "" : $" ({(cmdline.Length > 120 ? cmdline[..120] + "…" : cmdline)})";
    }
    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
    {
        return "";
    }
}
