using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Handoff.Client;
using Kestrel.ReusePort.Internal.Handoff.Protocol;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Decides when the endpoints the factory bound begin to accept from the port: at once when no host drives the
/// transport, or, under a host, only once it has started and the instance is warm (<see cref="ActivateAsync"/>).
/// Holds every endpoint, pending or accepting, and stops them all when the drain begins.
/// </summary>
internal sealed class ListenerActivation : IAcceptingListeners
{
    private readonly List<ReusePortConnectionListener> _listeners = [];
    private readonly SuccessorWatch _successor = new();
    private readonly Lock _gate = new();
    private bool _deferred;

    /// <summary>When this instance started (its transport was created), on the machine's monotonic clock.</summary>
    public long StartedAt { get; } = HandoffProtocol.MonotonicNow();

    public bool AnyAccepting => ActiveListeners().Count > 0;

    public Task<int> SuccessorTookOver => _successor.TookOver;

    /// <summary>Called by the host as it starts: endpoints bound from now on wait for <see cref="ActivateAsync"/>.</summary>
    public void DeferActivation()
    {
        lock (_gate)
        {
            _deferred = true;
        }
    }

    /// <summary>Adds an endpoint the factory bound; returns whether it must wait for <see cref="ActivateAsync"/>.</summary>
    public bool Add(ReusePortConnectionListener listener)
    {
        lock (_gate)
        {
            _listeners.Add(listener);
            return _deferred;
        }
    }

    /// <summary>The endpoints bound but not accepting yet.</summary>
    public List<ReusePortConnectionListener> PendingListeners()
    {
        lock (_gate)
        {
            return _listeners.FindAll(l => !l.IsActive);
        }
    }

    /// <summary>
    /// Makes every pending endpoint accept (taking sockets over where an instance runs), and every endpoint bound
    /// later accept at once. Returns the instances the sockets came from.
    /// </summary>
    public async Task<List<Predecessor>> ActivateAsync(CancellationToken cancellationToken)
    {
        List<ReusePortConnectionListener> pending;
        lock (_gate)
        {
            _deferred = false;
            pending = _listeners.FindAll(l => !l.IsActive);
        }

        var predecessors = new List<Predecessor>();
        try
        {
            foreach (var listener in pending)
            {
                if (await listener.ActivateAsync(cancellationToken).ConfigureAwait(false) is { } predecessor)
                {
                    predecessors.Add(predecessor);
                }
            }
        }
        catch
        {
            foreach (var predecessor in predecessors)
            {
                predecessor.Dispose();
            }

            throw;
        }

        return predecessors;
    }

    public async Task<int> StopAcceptingAsync()
    {
        ReusePortConnectionListener[] listeners;
        lock (_gate)
        {
            listeners = [.. _listeners];
        }

        var stops = new Task[listeners.Length];
        for (var i = 0; i < listeners.Length; i++)
        {
            stops[i] = listeners[i].StopAcceptingAsync();
        }

        await Task.WhenAll(stops).ConfigureAwait(false);
        return listeners.Length;
    }

    /// <summary>Called when another instance took one endpoint's sockets over, with that instance's pid.</summary>
    public void HandedOver(int processId) => _successor.HandedOver(processId, ActiveListeners());

    /// <summary>The listening sockets this process holds now, per endpoint (the meter's observable).</summary>
    public List<Measurement<long>> ObserveListeningSockets()
    {
        lock (_gate)
        {
            return _listeners.Where(l => l.ListeningSocketCount > 0).Select(l => new Measurement<long>(l.ListeningSocketCount, l.EndpointTags)).ToList();
        }
    }

    private List<ReusePortConnectionListener> ActiveListeners()
    {
        lock (_gate)
        {
            return _listeners.FindAll(l => l.IsActive);
        }
    }
}
