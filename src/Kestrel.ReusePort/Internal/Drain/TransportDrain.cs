using System;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Readiness;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// The drain of a stopping instance, whole: its timeout, the connections it waits for (<see cref="Connections"/>), the
/// signal the app sees (<see cref="IReusePortLifetime"/>), the wait itself with its systemd status lines, and the final
/// report. It runs after the removal delay, if any: stop accepting, then wait until the last connection is gone or
/// DrainTimeout is reached. What each request is told is the <see cref="DrainMiddleware"/>'s part.
/// </summary>
internal sealed class TransportDrain : IReusePortLifetime, IDisposable
{
    /// <summary>What the drain leaves Kestrel's shutdown, out of the host's, for the requests still in flight at its end.</summary>
    public static readonly TimeSpan KestrelShutdownReserve = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan s_statusInterval = TimeSpan.FromSeconds(1);

    private readonly IAcceptingListeners _listeners;
    private readonly ReusePortMetrics _metrics;
    private readonly SystemdNotifier _notifier;
    private readonly ReusePortSocketTransportOptions _options;
    private readonly IOptions<HostOptions> _hostOptions;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _draining = new();

    public TransportDrain(
        IAcceptingListeners listeners,
        ReusePortMetrics metrics,
        SystemdNotifier notifier,
        IOptions<ReusePortSocketTransportOptions> options,
        IOptions<HostOptions> hostOptions,
        ILoggerFactory loggerFactory)
    {
        _listeners = listeners;
        _metrics = metrics;
        _notifier = notifier;
        _options = options.Value;
        _hostOptions = hostOptions;
        _logger = loggerFactory.CreateLogger(ReusePortLog.CategoryName);
        Connections = new ConnectionTracker(metrics);
    }

    /// <summary>The connections accepted from the port, and how each one open at the drain ended.</summary>
    public ConnectionTracker Connections { get; }

    /// <summary>Whether clients are told to leave (the removal delay or the drain).</summary>
    public bool IsDraining => Connections.IsDraining;

    public CancellationToken Draining => _draining.Token;

    /// <summary>
    /// The drain timeout: <paramref name="configured"/> if set; else the host's <paramref name="shutdownTimeout"/> less
    /// what the removal delay took and Kestrel's reserve, but never less than half of what the delay left.
    /// </summary>
    public static TimeSpan TimeoutFor(TimeSpan? configured, TimeSpan shutdownTimeout, TimeSpan removalDelayTaken)
    {
        if (configured is { } drainTimeout)
        {
            return drainTimeout;
        }

        if (shutdownTimeout == Timeout.InfiniteTimeSpan)
        {
            return Timeout.InfiniteTimeSpan;
        }

        var left = shutdownTimeout - removalDelayTaken;
        var timeout = left - KestrelShutdownReserve;
        return timeout < left / 2 ? left / 2 : timeout;
    }

    /// <summary>The removal delay if it applies, then the drain; returns when no connection is left or at the drain timeout.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var delayed = await RemovalDelay.RunAsync(_listeners, Connections, _options.RemovalDelay, _notifier, _logger, cancellationToken).ConfigureAwait(false);
        await DrainAsync(TimeoutFor(_options.DrainTimeout, _hostOptions.Value.ShutdownTimeout, delayed), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Once Kestrel's shutdown is over (the host's StoppedAsync), says how the connections left at the drain timeout
    /// ended. Nothing when the drain ended before its timeout.
    /// </summary>
    public void ReportShutdown()
    {
        var tracker = Connections;
        if (tracker.IsPastDrainTimeout)
        {
            var finished = tracker.Ended(DrainOutcome.ConnectionClose) + tracker.Ended(DrainOutcome.GoAway)
                - tracker.EndedBeforeDrainTimeout(DrainOutcome.ConnectionClose) - tracker.EndedBeforeDrainTimeout(DrainOutcome.GoAway);
            ReusePortLog.ShutdownAfterDrain(_logger, tracker.Ended(DrainOutcome.ClosedIdle), finished, tracker.Ended(DrainOutcome.Aborted),
                tracker.EndedBeforeDrainTimeout(DrainOutcome.ConnectionClose), tracker.EndedBeforeDrainTimeout(DrainOutcome.GoAway), tracker.EndedBeforeDrainTimeout(DrainOutcome.ClientClosed));
        }
    }

    public void Dispose() => _draining.Dispose();

    private async Task DrainAsync(TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var endpoints = await _listeners.StopAcceptingAsync().ConfigureAwait(false);

        // Only now: a client sent away while this instance still accepted could come straight back to it.
        var tracker = Connections;
        tracker.BeginDrain();
        TriggerDraining();
        ReusePortLog.DrainStarted(_logger, endpoints, tracker.OpenConnections, tracker.BusyConnections, drainTimeout);

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
                        _notifier.Status(string.Create(CultureInfo.InvariantCulture,
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
            ReusePortLog.DrainTimeoutReached(_logger, (long)duration.TotalMilliseconds, open, busy);
            _notifier.Status($"Drain timeout reached: closing {open} connections ({busy} with a request in flight)");
            _metrics.DrainCompleted(duration, timedOut: true);
        }
        else
        {
            ReusePortLog.DrainEnded(_logger, (long)duration.TotalMilliseconds,
                tracker.Ended(DrainOutcome.ConnectionClose), tracker.Ended(DrainOutcome.GoAway), tracker.Ended(DrainOutcome.ClientClosed));
            _notifier.Status("Drained: no connection left");
            _metrics.DrainCompleted(duration, timedOut: false);
        }
    }

    /// <summary>Tells the app (<see cref="Draining"/>) that this instance can no longer be given a new connection.</summary>
    private void TriggerDraining()
    {
        try
        {
            _draining.Cancel();
        }
        catch (AggregateException e)
        {
            // An app's callback that throws must not stop the drain.
            ReusePortLog.DrainCallbackFailed(_logger, e);
        }
    }
}
