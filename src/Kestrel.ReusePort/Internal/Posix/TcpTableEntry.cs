using System.Net;

namespace Kestrel.ReusePort.Internal.Posix;

/// <summary>
/// One line of /proc/net/tcp or tcp6: a socket's local address and port, its state (<c>0A</c> is LISTEN), inode, and
/// receive queue (for a listening socket, the connections waiting to be accepted).
/// </summary>
internal readonly record struct TcpTableEntry(IPAddress Address, int Port, string State, ulong Inode, int ReceiveQueue)
{
    public const string ListenState = "0A";

    public bool IsListening => State == ListenState;
}
