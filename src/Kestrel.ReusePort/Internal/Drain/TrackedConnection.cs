using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// What the drain knows of one connection accepted from the port: its requests in flight and what it was told. Set
/// as a feature of the connection, so the drain's middleware finds it from <c>HttpContext.Features</c>.
/// </summary>
internal sealed class TrackedConnection
{
    private readonly ConnectionTracker _tracker;
    private int _requestsInFlight;
    private int _outcome = -1;
    private int _requestsHeld;
    private int _peakRequestsInFlight;
    private long _lastRequestEnded;
    private Lock? _goAwayLock;
    private Task? _goAway;
    private bool _finishedPastDrainTimeout;

    public TrackedConnection(ConnectionTracker tracker) => _tracker = tracker;

    /// <summary>What the drain told this connection, if anything: <see cref="DrainOutcome.ConnectionClose"/> or <see cref="DrainOutcome.GoAway"/>.</summary>
    public DrainOutcome? Told => Volatile.Read(ref _outcome) is var outcome and >= 0 ? (DrainOutcome)outcome : null;

    public bool HasRequestsInFlight => Volatile.Read(ref _requestsInFlight) > 0;

    /// <summary>Requests in flight that are not held back by <see cref="GoAwayAsync"/>: they may end at any moment.</summary>
    public int ExecutingRequests => Volatile.Read(ref _requestsInFlight) - Volatile.Read(ref _requestsHeld);

    /// <summary>
    /// Whether every request (stream) the client has kept in flight at once on this connection, at its busiest, is now
    /// held by the drain: a client that opens the next one whenever one ends, up to its limit, has then read every
    /// response and answered it. (The server counts a request ended before its client reads the end, never after, so
    /// the busiest count the server saw is at most the client's limit.)
    /// </summary>
    public bool HoldsAllItsClientKeepsInFlight => Volatile.Read(ref _requestsHeld) >= Volatile.Read(ref _peakRequestsInFlight);

    /// <summary>When a request of this connection last ended (a Stopwatch timestamp), or 0.</summary>
    public long LastRequestEnded => Volatile.Read(ref _lastRequestEnded);

    /// <summary>Whether a request of this connection finished after the drain timeout, during Kestrel's shutdown.</summary>
    public bool FinishedPastDrainTimeout => Volatile.Read(ref _finishedPastDrainTimeout);

    public void RequestStarted()
    {
        var inFlight = Interlocked.Increment(ref _requestsInFlight);
        if (inFlight == 1)
        {
            _tracker.ConnectionBusy(1);
        }

        // Racy by design: two requests starting at once may leave the lower count, which only shortens a GOAWAY's wait.
        if (inFlight > Volatile.Read(ref _peakRequestsInFlight))
        {
            Volatile.Write(ref _peakRequestsInFlight, inFlight);
        }
    }

    public void RequestEnded()
    {
        Volatile.Write(ref _lastRequestEnded, Stopwatch.GetTimestamp());
        if (Interlocked.Decrement(ref _requestsInFlight) == 0)
        {
            _tracker.ConnectionBusy(-1);
        }

        if (_tracker.IsPastDrainTimeout)
        {
            Volatile.Write(ref _finishedPastDrainTimeout, true);
        }
    }

    public void ToldConnectionClose() => Interlocked.CompareExchange(ref _outcome, (int)DrainOutcome.ConnectionClose, -1);

    /// <summary>Whether the transport is draining.</summary>
    public bool IsDraining => _tracker.IsDraining;

    /// <summary>
    /// Holds a drained request until the connection was sent its GOAWAY (<see cref="QuietGoAway"/>), which the first
    /// drained request starts with <paramref name="send"/>.
    /// </summary>
    public async Task GoAwayAsync(Func<Task> send, CancellationToken requestAborted)
    {
        Interlocked.Increment(ref _requestsHeld);
        try
        {
            await GoAway(send).WaitAsync(requestAborted).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _requestsHeld);
        }
    }

    /// <summary>Starts the connection's GOAWAY with <paramref name="send"/>, unless it was started already.</summary>
    public Task GoAway(Func<Task> send)
    {
        Interlocked.CompareExchange(ref _outcome, (int)DrainOutcome.GoAway, -1);
        // Made only when a drained HTTP/2 connection needs it, not for every connection accepted.
        lock (LazyInitializer.EnsureInitialized(ref _goAwayLock))
        {
            return _goAway ??= send();
        }
    }

    public void OnClosed() => _tracker.ConnectionClosed(this);
}
