using System;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// The drain of a stopping instance: stop accepting, then wait until the last connection is gone or DrainTimeout is
/// reached, saying meanwhile how many are left. What each request is told is the <see cref="DrainMiddleware"/>'s part.
/// </summary>
internal static class ConnectionDrain
{
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan s_statusInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Once Kestrel's shutdown is over (the host's StoppedAsync), says how the connections left at the drain timeout
    /// ended. Nothing when the drain ended before its timeout.
    /// </summary>
    public static void ReportShutdown(ConnectionTracker tracker, Microsoft.Extensions.Logging.ILogger logger)
    {
        if (tracker.IsPastDrainTimeout)
        {
            var finished = tracker.Ended(DrainOutcome.ConnectionClose) + tracker.Ended(DrainOutcome.GoAway)
                - tracker.EndedBeforeDrainTimeout(DrainOutcome.ConnectionClose) - tracker.EndedBeforeDrainTimeout(DrainOutcome.GoAway);
            ReusePortLog.ShutdownAfterDrain(logger, tracker.Ended(DrainOutcome.ClosedIdle), finished, tracker.Ended(DrainOutcome.Aborted),
                tracker.EndedBeforeDrainTimeout(DrainOutcome.ConnectionClose), tracker.EndedBeforeDrainTimeout(DrainOutcome.GoAway), tracker.EndedBeforeDrainTimeout(DrainOutcome.ClientClosed));
        }
    }

    public static async Task RunAsync(ReusePortSocketTransportFactory factory, TimeSpan drainTimeout, DrainSignal signal, SystemdNotifier notifier, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var endpoints = await factory.StopAcceptingAsync().ConfigureAwait(false);
        signal.Trigger();
        var tracker = factory.Tracker;
        var logger = factory.Logger;
        ReusePortLog.DrainStarted(logger, endpoints, tracker.OpenConnections, tracker.BusyConnections, drainTimeout);

        var nextStatus = TimeSpan.Zero;
        using (var timer = new PeriodicTimer(s_pollInterval))
        {
            try
            {
                while (tracker.OpenConnections > 0 && Stopwatch.GetElapsedTime(started) < drainTimeout)
                {
                    var elapsed = Stopwatch.GetElapsedTime(started);
                    if (elapsed >= nextStatus)
                    {
                        notifier.Status(string.Create(CultureInfo.InvariantCulture,
                            $"Draining {tracker.OpenConnections} connections ({tracker.BusyConnections} with a request in flight), {elapsed.TotalSeconds:0} s of at most {drainTimeout.TotalSeconds:0} s"));
                        nextStatus = elapsed + s_statusInterval;
                    }

                    await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                // The host's shutdown timeout is up: Kestrel's own shutdown takes it from here.
            }
        }

        var duration = Stopwatch.GetElapsedTime(started);
        if (tracker.OpenConnections > 0)
        {
            var (open, busy) = tracker.EndDrainAtTimeout();
            ReusePortLog.DrainTimeoutReached(logger, (long)duration.TotalMilliseconds, open, busy);
            notifier.Status($"Drain timeout reached: closing {open} connections ({busy} with a request in flight)");
            factory.Metrics.DrainCompleted(duration, timedOut: true);
        }
        else
        {
            ReusePortLog.DrainEnded(logger, (long)duration.TotalMilliseconds,
                tracker.Ended(DrainOutcome.ConnectionClose), tracker.Ended(DrainOutcome.GoAway), tracker.Ended(DrainOutcome.ClientClosed));
            notifier.Status("Drained: no connection left");
            factory.Metrics.DrainCompleted(duration, timedOut: false);
        }
    }
}
