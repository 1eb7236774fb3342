using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>What the drain needs of the endpoints that accept from the port: whether they did, and how to stop them.</summary>
internal interface IAcceptingListeners
{
    /// <summary>Whether any endpoint accepted from the port (an instance stopped before it was warm never did).</summary>
    bool AnyAccepting { get; }

    /// <summary>Completes, with the successor's pid, once another instance took the sockets of every accepting endpoint over.</summary>
    Task<int> SuccessorTookOver { get; }

    /// <summary>Stops accepting on every endpoint, and returns how many there were.</summary>
    Task<int> StopAcceptingAsync();
}
