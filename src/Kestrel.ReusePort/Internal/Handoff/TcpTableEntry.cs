using System.Net;

namespace Kestrel.ReusePort.Internal;

/// <summary>One line of /proc/net/tcp or tcp6: a socket's local address and port, its state (<c>0A</c> is LISTEN) and inode.</summary>
internal readonly record struct TcpTableEntry(IPAddress Address, int Port, string State, ulong Inode)
{
    public const string ListenState = "0A";

    public bool IsListening => State == ListenState;
}
