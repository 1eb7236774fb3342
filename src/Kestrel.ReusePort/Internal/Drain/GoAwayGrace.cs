using System;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Posix;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// How long a draining HTTP/2 connection stays quiet before and after its GOAWAY (<see cref="QuietGoAway"/>): enough
/// for the client to read what came before and act on it, then to see the GOAWAY. That is the connection's smoothed
/// round-trip time as the kernel measures it (TCP_INFO) with room for its variation, never less than
/// <see cref="Minimum"/> (for the client's own reaction time, which dominates on a loaded host) nor more than
/// <see cref="Maximum"/>.
/// </summary>
internal static class GoAwayGrace
{
    public static readonly TimeSpan Minimum = TimeSpan.FromMilliseconds(20);
    public static readonly TimeSpan Maximum = TimeSpan.FromSeconds(1);

    // struct tcp_info: tcpi_rtt and tcpi_rttvar, in microseconds, at these offsets on every Linux architecture.
    private const int RttOffset = 68;
    private const int RttVarianceOffset = 72;

    public static TimeSpan For(HttpContext context)
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is null || !NativeMethods.IsSupported)
        {
            return Minimum;
        }

        try
        {
            Span<byte> info = stackalloc byte[RttVarianceOffset + sizeof(uint)];
            if (socket.GetRawSocketOption(NativeMethods.IPProtoTcp, NativeMethods.TcpInfo, info) < info.Length)
            {
                return Minimum;
            }

            var rtt = BitConverter.ToUInt32(info[RttOffset..]);
            var variance = BitConverter.ToUInt32(info[RttVarianceOffset..]);
            var grace = TimeSpan.FromMicroseconds(2.0 * (rtt + (4.0 * variance)));
            return grace < Minimum ? Minimum : grace > Maximum ? Maximum : grace;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return Minimum;
        }
    }
}
