using System;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Readiness;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// What a stopping instance does before its drain when it is removed rather than replaced: it keeps accepting for
/// <see cref="ReusePortSocketTransportOptions.RemovalDelay"/>, since a load balancer goes on sending it connections until
/// its endpoint list catches up, and tells every client meanwhile to reconnect, so that they move to the instances that
/// stay. A successor that holds the sockets ends it at once: the successor serves the port's queues from then on.
/// </summary>
internal static class RemovalDelay
{
    private static readonly TimeSpan s_statusInterval = TimeSpan.FromSeconds(1);

    /// <summary>Runs the delay if it applies, and returns how long it took (zero when skipped, at most the delay).</summary>
    public static async Task<TimeSpan> RunAsync(
        IAcceptingListeners listeners,
        ConnectionTracker tracker,
        TimeSpan delay,
        SystemdNotifier notifier,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        if (delay <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        var successor = listeners.SuccessorTookOver;
        if (successor.IsCompleted)
        {
            ReusePortLog.RemovalDelaySkipped(logger, string.Create(CultureInfo.InvariantCulture, $"process {successor.Result} took this instance's sockets over and serves them"));
            return TimeSpan.Zero;
        }

        if (!listeners.AnyAccepting)
        {
            // Stopped before it was warm (or it has no IP endpoint): no load balancer can have been sending it connections.
            ReusePortLog.RemovalDelaySkipped(logger, "this instance never accepted connections from the port");
            return TimeSpan.Zero;
        }

        var started = Stopwatch.GetTimestamp();
        tracker.SendClientsAway();
        ReusePortLog.RemovalDelayStarted(logger, (long)delay.TotalMilliseconds);

        while (Stopwatch.GetElapsedTime(started) is var elapsed && elapsed < delay && !cancellationToken.IsCancellationRequested)
        {
            notifier.Status(string.Create(CultureInfo.InvariantCulture,
                $"Removal delay: accepting {(delay - elapsed).TotalSeconds:0} s more while load balancers drop this instance ({tracker.AcceptedWhileSendingAway.Count} new connections so far); every response asks its client to reconnect"));

            var tick = Task.Delay(Min(delay - elapsed, s_statusInterval), cancellationToken);
            if (await Task.WhenAny(successor, tick).ConfigureAwait(false) == successor)
            {
                var taken = Stopwatch.GetElapsedTime(started);
                ReusePortLog.RemovalDelaySuccessor(logger, successor.Result, (long)taken.TotalMilliseconds, tracker.AcceptedWhileSendingAway.Count);
                notifier.Status(string.Create(CultureInfo.InvariantCulture, $"Replaced during the removal delay by process {successor.Result}: stopping accepting now"));
                return taken;
            }
        }

        var duration = Stopwatch.GetElapsedTime(started);
        var (accepted, last) = tracker.AcceptedWhileSendingAway;
        ReusePortLog.RemovalDelayEnded(logger, (long)duration.TotalMilliseconds, accepted,
            last == 0 ? -1 : (long)Stopwatch.GetElapsedTime(started, last).TotalMilliseconds);

        // The timer's few milliseconds late come out of Kestrel's reserve, not out of a drain timeout that was planned.
        return Min(duration, delay);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
