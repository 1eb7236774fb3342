using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace CountersSnapshot;

/// <summary>How a session ended.</summary>
internal enum SessionEnd
{
    /// <summary>--seconds passed and the session was stopped.</summary>
    TimeUp,

    /// <summary>The event stream ended first: the process exited (or closed the session).</summary>
    ProcessEnded,

    /// <summary>Ctrl+C, SIGINT or SIGTERM.</summary>
    Cancelled,
}

/// <summary>The result of one session.</summary>
internal sealed record SessionResult(MeterSnapshot Snapshot, SessionEnd End, TimeSpan Listened, IReadOnlyDictionary<string, string> Arguments, long Keywords);

/// <summary>One EventPipe session to the process with the "System.Diagnostics.Metrics" EventSource on.</summary>
internal static class MetricsSession
{
    public const string ProviderName = "System.Diagnostics.Metrics";

    // MetricsEventSource's keywords: TimeSeriesValues (0x2) is what dotnet-counters enables (values, Begin/End of
    // each instrument, the intervals, the errors); InstrumentPublishing (0x4) adds InstrumentPublished for every
    // instrument the listener is told of, which at the session's start is every instrument created before it, so the
    // snapshot can say which instruments existed before it listened.
    private const long TimeSeriesValues = 0x2;
    private const long InstrumentPublishing = 0x4;

    /// <summary>
    /// The provider's filter arguments, as dotnet-counters sends them (Microsoft.Diagnostics.Monitoring.EventPipe's
    /// MetricSourceConfiguration): a session id of its own (so that events of another tool's session are told apart),
    /// a client id (the reference count of a shared session), the meters, the interval and the two limits.
    /// </summary>
    public static Dictionary<string, string> Arguments(SnapshotOptions options, string sessionId) => new(StringComparer.Ordinal)
    {
        ["SessionId"] = sessionId,
        ["Metrics"] = options.Meter,
        ["RefreshInterval"] = options.RefreshIntervalSeconds.ToString(CultureInfo.InvariantCulture),
        ["MaxTimeSeries"] = options.MaxTimeSeries.ToString(CultureInfo.InvariantCulture),
        ["MaxHistograms"] = options.MaxHistograms.ToString(CultureInfo.InvariantCulture),
        ["ClientId"] = Guid.NewGuid().ToString(),
    };

    /// <summary>
    /// Starts the session (throws what <see cref="DiagnosticsClient"/> throws when the process cannot be reached),
    /// resumes the runtime if asked, and reads events until the time is up, the process exits, or
    /// <paramref name="cancel"/> fires.
    /// </summary>
    public static SessionResult Run(DiagnosticsClient client, SnapshotOptions options, CancellationToken cancel)
    {
        var sessionId = Guid.NewGuid().ToString();
        var arguments = Arguments(options, sessionId);
        const long keywords = TimeSeriesValues | InstrumentPublishing;
        var provider = new EventPipeProvider(ProviderName, EventLevel.Informational, keywords, arguments);

        // No rundown (no method and module lists at the end: they take time and say nothing about metrics), no stacks.
        var configuration = new EventPipeSessionConfiguration([provider], circularBufferSizeMB: 64, rundownKeyword: 0, requestStackwalk: false);
        using var session = client.StartEventPipeSession(configuration);
        var started = Stopwatch.GetTimestamp();
        if (options.Resume)
        {
            client.ResumeRuntime();
        }

        // For scripts: from here on the process's measurements are seen.
        Console.Error.WriteLine($"CountersSnapshot: listening to pid {options.Pid} (session {sessionId}){(options.Resume ? ", runtime resumed" : "")}");

        var snapshot = new MeterSnapshot(sessionId, options.Meter.Split([';', ',', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var end = SessionEnd.ProcessEnded;
        var stopping = 0;
        void Stop(SessionEnd reason)
        {
            if (Interlocked.Exchange(ref stopping, 1) != 0)
            {
                return;
            }

            end = reason;
            try
            {
                // The runtime flushes what it holds and closes the stream: Process() below returns.
                session.Stop();
            }
            catch (Exception ex) when (ex is ServerNotAvailableException or ServerErrorException or System.IO.IOException or ObjectDisposedException)
            {
                // The process is gone already: its stream ends by itself.
            }
        }

        using var timer = new Timer(_ => Stop(SessionEnd.TimeUp), null, options.Duration, Timeout.InfiniteTimeSpan);
        using var registration = cancel.Register(() => Stop(SessionEnd.Cancelled));
        using (var source = new EventPipeEventSource(session.EventStream))
        {
            // COUNTERSSNAPSHOT_TRACE=1: every event of the provider on stderr, to see what the process sent.
            var trace = Environment.GetEnvironmentVariable("COUNTERSSNAPSHOT_TRACE") == "1";
            source.Dynamic.All += e =>
            {
                if (e.ProviderName != ProviderName)
                {
                    return;
                }

                if (trace)
                {
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{e.TimeStamp:HH:mm:ss.fff} {e.EventName} v{e.Version}: {string.Join(", ", e.PayloadNames.Select(n => $"{n}={e.PayloadByName(n)}"))}"));
                }

                snapshot.Apply(e);
            };

            try
            {
                source.Process();
            }
            catch (Exception ex) when (ex is System.IO.EndOfStreamException or System.IO.IOException)
            {
                // The process exited in the middle of a block: what was read stays.
            }
        }

        // The stream ended before the timer: the process exited, or closed the session.
        _ = Interlocked.Exchange(ref stopping, 1);
        return new SessionResult(snapshot, end, Stopwatch.GetElapsedTime(started), arguments, keywords);
    }

    /// <summary>Waits for the session on a thread of its own, so that Ctrl+C still prints what was read.</summary>
    public static Task<SessionResult> RunAsync(DiagnosticsClient client, SnapshotOptions options, CancellationToken cancel) =>
        Task.Factory.StartNew(() => Run(client, options, cancel), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
