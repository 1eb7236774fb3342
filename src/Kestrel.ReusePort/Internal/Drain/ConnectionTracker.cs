using System;
using System.Threading;
using Kestrel.ReusePort.Internal.Diagnostics;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// Counts the connections this transport accepted that are still open, and those with a request in flight, so that a
/// drain can end as soon as none is open, report what is left at its timeout, and count how each connection ended.
/// </summary>
internal sealed class ConnectionTracker(ReusePortMetrics metrics)
{
    private const int Running = 0;
    private const int Draining = 1;
    private const int PastDrainTimeout = 2;

    private readonly long[] _outcomes = new long[Enum.GetValues<DrainOutcome>().Length];
    private readonly long[] _outcomesAtDrainTimeout = new long[Enum.GetValues<DrainOutcome>().Length];
    private long _open;
    private long _busy;
    private int _state;
    private volatile bool _sendingAway;
    private long _acceptedWhileSendingAway;
    private long _lastAcceptedWhileSendingAway;

    public long OpenConnections => Interlocked.Read(ref _open);

    /// <summary>Open connections with at least one request in flight.</summary>
    public long BusyConnections => Interlocked.Read(ref _busy);

    /// <summary>Whether clients are told to leave: during the drain, and during a removal delay while still accepting.</summary>
    public bool IsDraining => _sendingAway || Volatile.Read(ref _state) != Running;

    /// <summary>Connections accepted since <see cref="SendClientsAway"/>, and when the last of them came (a Stopwatch timestamp, or 0).</summary>
    public (long Count, long LastTimestamp) AcceptedWhileSendingAway =>
        (Interlocked.Read(ref _acceptedWhileSendingAway), Interlocked.Read(ref _lastAcceptedWhileSendingAway));

    internal bool IsPastDrainTimeout => Volatile.Read(ref _state) == PastDrainTimeout;

    public void Track(ConnectionContext connection)
    {
        var tracked = new TrackedConnection(this);
        connection.Features.Set(tracked);
        Interlocked.Increment(ref _open);
        if (_sendingAway)
        {
            // Counted only in the removal delay, where it says whether the load balancer still sent connections.
            Interlocked.Increment(ref _acceptedWhileSendingAway);
            Interlocked.Exchange(ref _lastAcceptedWhileSendingAway, System.Diagnostics.Stopwatch.GetTimestamp());
        }

        connection.ConnectionClosed.UnsafeRegister(static state => ((TrackedConnection)state!).OnClosed(), tracked);
    }

    /// <summary>
    /// From now on responses ask clients to leave (<see cref="IsDraining"/>) while the instance still accepts: the
    /// removal delay. Connections that end meanwhile are not counted as drained, the drain has not begun.
    /// </summary>
    public void SendClientsAway() => _sendingAway = true;

    /// <summary>From now on, every connection that ends is counted by how it ended.</summary>
    public void BeginDrain() => Interlocked.CompareExchange(ref _state, Draining, Running);

    /// <summary>
    /// The drain reached its timeout and hands what is left to Kestrel's shutdown, which closes idle connections at once
    /// and lets requests in flight finish until the host's shutdown timeout. Returns the open and the busy count.
    /// </summary>
    public (long Open, long Busy) EndDrainAtTimeout()
    {
        if (Interlocked.CompareExchange(ref _state, PastDrainTimeout, Draining) == Draining)
        {
            for (var i = 0; i < _outcomes.Length; i++)
            {
                _outcomesAtDrainTimeout[i] = Interlocked.Read(ref _outcomes[i]);
            }
        }

        return (OpenConnections, BusyConnections);
    }

    /// <summary>How many connections open at the drain's start have ended so far with <paramref name="outcome"/>.</summary>
    public long Ended(DrainOutcome outcome) => Interlocked.Read(ref _outcomes[(int)outcome]);

    /// <summary>How many had ended with <paramref name="outcome"/> when the drain reached its timeout.</summary>
    public long EndedBeforeDrainTimeout(DrainOutcome outcome) => _outcomesAtDrainTimeout[(int)outcome];

    internal void ConnectionBusy(int delta) => Interlocked.Add(ref _busy, delta);

    internal void ConnectionClosed(TrackedConnection connection)
    {
        Interlocked.Decrement(ref _open);
        var outcome = Volatile.Read(ref _state) switch
        {
            Draining => connection.Told ?? DrainOutcome.ClientClosed,

            // Past the drain timeout, Kestrel's shutdown closes idle connections, and aborts requests still running at its timeout.
            PastDrainTimeout => connection.HasRequestsInFlight ? DrainOutcome.Aborted
                : connection.FinishedPastDrainTimeout ? connection.Told ?? DrainOutcome.ConnectionClose
                : DrainOutcome.ClosedIdle,
            _ => (DrainOutcome?)null,
        };

        if (outcome is { } ended)
        {
            // Counted here too, for the log lines: the process often exits before a periodic metrics collector
            // (dotnet-counters, a scrape) reads the last ones.
            Interlocked.Increment(ref _outcomes[(int)ended]);
            metrics.DrainConnectionsEnded(ended, 1);
        }
    }
}
