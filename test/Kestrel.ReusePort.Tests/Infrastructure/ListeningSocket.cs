using System.Net;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>A TCP socket in LISTEN state, as /proc/net/tcp or /proc/net/tcp6 shows it.</summary>
/// <param name="Address">The local address it is bound to.</param>
/// <param name="Port">The local port.</param>
/// <param name="Inode">The socket's inode, which /proc/&lt;pid&gt;/fd links name as <c>socket:[inode]</c>.</param>
public sealed record ListeningSocket(IPAddress Address, int Port, long Inode)
{
    public override string ToString() => $"{new IPEndPoint(Address, Port)} (inode {Inode})";
}
