using System.Collections.Generic;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal.Handoff.Client;

/// <summary>
/// What a starting instance came away with from the rendezvous: a running instance's sockets and the connection to it,
/// or, when none runs, the place itself, claimed before this instance opens sockets of its own, so that an instance
/// starting at the same moment takes those sockets instead of opening yet more; or neither.
/// </summary>
internal readonly record struct HandoffAcquisition(List<Socket> Sockets, Predecessor? Predecessor, Socket? ClaimedPlace)
{
    public static HandoffAcquisition None => new([], null, null);
}
