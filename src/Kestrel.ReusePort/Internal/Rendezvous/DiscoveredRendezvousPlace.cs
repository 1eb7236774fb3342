using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Kestrel.ReusePort.Internal.Handoff.Protocol;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.Internal.Rendezvous;

/// <summary>
/// For a user with no private directory (no RUNTIME_DIRECTORY or XDG_RUNTIME_DIR, not root): every instance listens on
/// an abstract socket with a random name, and a starting instance finds it through /proc, from the processes that hold
/// the endpoint's listening sockets.
/// </summary>
/// <remarks>
/// Nobody can take the name in advance, since it is chosen at random when the instance listens; and only a process of
/// the same user can tell which abstract socket belongs to a holder of the port (see <see cref="ProcessSockets"/>).
/// The peer's credentials must then match the holder found. This needs the instances to share the PID namespace (to
/// see each other in /proc) and the network namespace (for the abstract name); across PID namespaces, configure a
/// shared RendezvousDirectory.
/// </remarks>
internal sealed class DiscoveredRendezvousPlace : RendezvousPlace
{
    private readonly IPEndPoint _endpoint;
    private readonly string _prefix;
    private string? _name;

    public DiscoveredRendezvousPlace(IPEndPoint endpoint)
    {
        _endpoint = endpoint;
        _prefix = $"kestrel-reuseport/v{HandoffProtocol.CurrentVersion}/{endpoint}/";
    }

    public override string Description => "@" + (_name ?? _prefix + "<random>");

    public override UnixDomainSocketEndPoint? WatchEndPoint => null;

    public override IReadOnlyList<RendezvousCandidate> FindRunningInstances()
    {
        var candidates = new List<RendezvousCandidate>();
        var holders = ProcessSockets.HoldersOf(_endpoint);
        if (holders.Count == 0)
        {
            return candidates;
        }

        var names = ProcessSockets.ListeningAbstractSockets(_prefix);
        foreach (var (pid, sockets) in holders)
        {
            foreach (var (inode, name) in names)
            {
                if (sockets.Contains(inode))
                {
                    candidates.Add(new RendezvousCandidate(new UnixDomainSocketEndPoint("\0" + name), "@" + name, pid, HandoffProtocol.CurrentVersion));
                }
            }
        }

        return candidates;
    }

    public override Socket? TryListen()
    {
        _name = _prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        return Listen(new UnixDomainSocketEndPoint("\0" + _name));
    }

    public override void Release(bool successorsWaiting)
    {
    }
}
