using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal.Rendezvous;

/// <summary>
/// Where a starting instance may find a running one: the socket to connect to, the process expected to answer (when
/// known, it must match the peer's credentials), and the protocol version it speaks.
/// </summary>
internal readonly record struct RendezvousCandidate(UnixDomainSocketEndPoint EndPoint, string Description, int? ProcessId, int Version);
