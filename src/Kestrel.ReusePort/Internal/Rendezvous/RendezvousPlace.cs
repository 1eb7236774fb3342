using System;
using System.Collections.Generic;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Handoff.Protocol;

namespace Kestrel.ReusePort.Internal.Rendezvous;

/// <summary>
/// The meeting place of the instances of one endpoint: where a starting instance looks for a running one, and how a
/// running instance comes to listen there.
/// </summary>
internal abstract class RendezvousPlace : IDisposable
{
    /// <summary>The place, for log messages.</summary>
    public abstract string Description { get; }

    /// <summary>Where a watcher learns that the listener left; null when every instance listens on a place of its own.</summary>
    public abstract UnixDomainSocketEndPoint? WatchEndPoint { get; }

    /// <summary>Where a starting instance looks for a running one, best first.</summary>
    public abstract IReadOnlyList<RendezvousCandidate> FindRunningInstances();

    /// <summary>Listens at the place, or returns null when a live instance of this user holds it.</summary>
    public abstract Socket? TryListen();

    /// <summary>Whether the place still leads to this instance's listener (a directory can be removed under it).</summary>
    public virtual bool IsStillListening() => true;

    /// <summary>
    /// Gives the place up on a clean stop. With <paramref name="successorsWaiting"/>, what a successor replaces
    /// atomically is left for it; otherwise nothing this instance created is left behind.
    /// </summary>
    public abstract void Release(bool successorsWaiting);

    public virtual void Dispose()
    {
    }

    /// <summary>A Unix stream socket listening at <paramref name="endPoint"/>; nothing is left open if that fails.</summary>
    protected static Socket Listen(UnixDomainSocketEndPoint endPoint)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(endPoint);
            listener.Listen(HandoffProtocol.Backlog);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }
}
