using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Handoff.Protocol;

namespace Kestrel.ReusePort.Internal.Rendezvous;

/// <summary>
/// A fixed name in the abstract Unix socket namespace of the network namespace (<c>@kestrel-reuseport/v2/uid-N/endpoint</c>),
/// listened on by whichever instance binds it first. Only with <c>AbstractRendezvous</c>, for instances that share a
/// network namespace but neither a directory nor a PID namespace.
/// </summary>
/// <remarks>
/// Any user of the network namespace may bind any abstract name, so a process of another user can take this one
/// before the app does: the peer checks then refuse it, and socket handoff stays off until it goes away. Abstract
/// names vanish with their process, so nothing is ever stale.
/// </remarks>
internal sealed class AbstractRendezvousPlace : RendezvousPlace
{
    private readonly string _name;

    public AbstractRendezvousPlace(IPEndPoint endpoint, uint userId, int version = HandoffProtocol.CurrentVersion)
    {
        _name = string.Create(CultureInfo.InvariantCulture, $"kestrel-reuseport/v{version}/uid-{userId}/{endpoint}");
        WatchEndPoint = new UnixDomainSocketEndPoint("\0" + _name);
        Version = version;
    }

    public int Version { get; }

    public override string Description => "@" + _name;

    public override UnixDomainSocketEndPoint WatchEndPoint { get; }

    public override IReadOnlyList<RendezvousCandidate> FindRunningInstances() =>
        [new(WatchEndPoint, Description, ProcessId: null, Version)];

    public override Socket? TryListen()
    {
        try
        {
            return Listen(WatchEndPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return null;
        }
    }

    public override void Release(bool successorsWaiting)
    {
    }
}
