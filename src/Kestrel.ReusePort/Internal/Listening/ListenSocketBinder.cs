using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Posix;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Opens the SO_REUSEPORT listening sockets of one endpoint, all with the same settings, or none at all.
/// </summary>
internal static class ListenSocketBinder
{
    /// <summary>
    /// Adds <paramref name="count"/> sockets bound to <paramref name="endpoint"/> with SO_REUSEPORT, not listening yet:
    /// they hold the address (and report a bind conflict now, at startup) but the kernel gives them no connection until
    /// they listen. For port 0 the first socket picks the port and the others join it. On failure the sockets this call
    /// opened are closed and <paramref name="sockets"/> is left as it was.
    /// </summary>
    public static void Bind(IPEndPoint endpoint, int count, List<Socket> sockets)
    {
        var first = sockets.Count;
        try
        {
            for (var i = 0; i < count; i++)
            {
                var target = sockets.Count == 0 ? endpoint : new IPEndPoint(endpoint.Address, ((IPEndPoint)sockets[0].LocalEndPoint!).Port);
                sockets.Add(CreateBound(target));
            }
        }
        catch
        {
            for (var i = sockets.Count - 1; i >= first; i--)
            {
                sockets[i].Dispose();
                sockets.RemoveAt(i);
            }

            throw;
        }
    }

    /// <summary>
    /// Applies the tuning options to a listening socket of the group; a socket taken over from a running instance gets
    /// them again, so that a deploy can change them.
    /// </summary>
    public static void ApplyTuning(Socket socket, ReusePortSocketTransportOptions options)
    {
        var deferSeconds = (int)Math.Ceiling(options.DeferAccept.TotalSeconds);
        socket.SetRawSocketOption(NativeMethods.IPProtoTcp, NativeMethods.TcpDeferAccept, BitConverter.GetBytes(deferSeconds));
        if (options.FastOpenQueueLength > 0)
        {
            socket.SetRawSocketOption(NativeMethods.IPProtoTcp, NativeMethods.TcpFastOpen, BitConverter.GetBytes(options.FastOpenQueueLength));
        }
    }

    public static void EnableReusePort(Socket socket)
    {
        // .NET's Bind sets SO_REUSEADDR on Unix already; both are set here so the socket's intent does not hang on that.
        socket.SetRawSocketOption(NativeMethods.SolSocket, NativeMethods.SoReuseAddr, BitConverter.GetBytes(1));
        socket.SetRawSocketOption(NativeMethods.SolSocket, NativeMethods.SoReusePort, BitConverter.GetBytes(1));
    }

    public static bool HasReusePort(Socket socket)
    {
        Span<byte> value = stackalloc byte[sizeof(int)];
        return socket.GetRawSocketOption(NativeMethods.SolSocket, NativeMethods.SoReusePort, value) == sizeof(int)
            && BitConverter.ToInt32(value) != 0;
    }

    private static Socket CreateBound(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // Kestrel's ListenAnyIP binds [::] and expects IPv4 clients too, as its own transport does.
            if (endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            EnableReusePort(socket);
            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(BindConflictMessage(endpoint), e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    internal static string BindConflictMessage(IPEndPoint endpoint) => string.Create(CultureInfo.InvariantCulture,
        $"Failed to bind {endpoint} with SO_REUSEPORT: the address is already in use by a socket that cannot share it. " +
        $"A port can be shared only by sockets that all set SO_REUSEPORT and belong to the same effective user: every process " +
        $"listening on {endpoint} must use UseReusePortSockets() (or set SO_REUSEPORT itself) and run as user id {CurrentUserId()}.");

    private static string CurrentUserId() => NativeMethods.IsSupported
        ? NativeMethods.GetEffectiveUserId().ToString(CultureInfo.InvariantCulture)
        : "of this process";
}
