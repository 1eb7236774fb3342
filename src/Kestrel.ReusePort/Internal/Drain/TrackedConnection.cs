using System.Diagnostics;
using System.Threading;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// What the drain knows of one connection accepted from the port: its requests in flight and what it was told. Set
/// as a feature of the connection, so the drain's middleware finds it from <c>HttpContext.Features</c>.
/// </summary>
internal sealed class TrackedConnection
{
    private readonly ConnectionTracker _tracker;
    private int _requestsInFlight;
    private int _outcome = -1;
    private long _goAwayTimestamp;
    private bool _finishedPastBound;

    public TrackedConnection(ConnectionTracker tracker) => _tracker = tracker;

    /// <summary>What the drain told this connection, if anything: <see cref="DrainOutcome.ConnectionClose"/> or <see cref="DrainOutcome.GoAway"/>.</summary>
    public DrainOutcome? Told => Volatile.Read(ref _outcome) is var outcome and >= 0 ? (DrainOutcome)outcome : null;

    public bool HasRequestsInFlight => Volatile.Read(ref _requestsInFlight) > 0;

    /// <summary>Whether a request of this connection finished after the drain's bound, during Kestrel's shutdown.</summary>
    public bool FinishedPastBound => Volatile.Read(ref _finishedPastBound);

    public void RequestStarted()
    {
        if (Interlocked.Increment(ref _requestsInFlight) == 1)
        {
            _tracker.ConnectionBusy(1);
        }
    }

    public void RequestEnded()
    {
        if (Interlocked.Decrement(ref _requestsInFlight) == 0)
        {
            _tracker.ConnectionBusy(-1);
        }

        if (_tracker.IsPastBound)
        {
            Volatile.Write(ref _finishedPastBound, true);
        }
    }

    public void ToldConnectionClose() => Interlocked.CompareExchange(ref _outcome, (int)DrainOutcome.ConnectionClose, -1);

    /// <summary>Records that GOAWAY was asked for; returns when it was first asked (a Stopwatch timestamp).</summary>
    public long ToldGoAway()
    {
        Interlocked.CompareExchange(ref _outcome, (int)DrainOutcome.GoAway, -1);
        var now = Stopwatch.GetTimestamp();
        var first = Interlocked.CompareExchange(ref _goAwayTimestamp, now, 0);
        return first == 0 ? now : first;
    }

    public void OnClosed() => _tracker.ConnectionClosed(this);
}
