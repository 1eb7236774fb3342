using System;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Internal.Posix;

/// <summary>
/// The kernel's word on who is at the other end of a Unix domain socket (SO_PEERCRED): it cannot be forged by the peer.
/// </summary>
internal readonly record struct PeerCredentials(int ProcessId, uint UserId, uint GroupId)
{
    public static PeerCredentials Get(Socket socket)
    {
        Span<byte> credentials = stackalloc byte[12];
        var length = socket.GetRawSocketOption(NativeMethods.SolSocket, NativeMethods.SoPeerCred, credentials);
        if (length < 12)
        {
            throw new SocketException((int)SocketError.ProtocolNotSupported);
        }

        return new PeerCredentials(
            MemoryMarshal.Read<int>(credentials),
            MemoryMarshal.Read<uint>(credentials[4..]),
            MemoryMarshal.Read<uint>(credentials[8..]));
    }
}
