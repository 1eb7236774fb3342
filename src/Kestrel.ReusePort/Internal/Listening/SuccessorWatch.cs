using System.Collections.Generic;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Knows whether this instance is replaced rather than removed: a successor took the sockets of every endpoint that
/// accepts from the port, so it keeps serving their queues and the load balancer's connections when this one stops.
/// </summary>
/// <remarks>
/// An endpoint without socket handoff can never be taken over, so an instance with one is always removed. A successor
/// that took the sockets and exited before this instance stops is not noticed.
/// </remarks>
internal sealed class SuccessorWatch
{
    private readonly TaskCompletionSource<int> _tookOver = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes, with the successor's pid, once every accepting endpoint has been taken over.</summary>
    public Task<int> TookOver => _tookOver.Task;

    /// <summary>Called when one endpoint's sockets went to process <paramref name="processId"/>.</summary>
    public void HandedOver(int processId, List<ReusePortConnectionListener> active)
    {
        if (active.Count > 0 && active.TrueForAll(l => l.HandedOver))
        {
            _tookOver.TrySetResult(processId);
        }
    }
}
