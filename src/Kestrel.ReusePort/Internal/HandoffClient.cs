using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Asks a running instance of the same user for the listening sockets of an endpoint.
/// </summary>
internal static class HandoffClient
{
    /// <summary>
    /// Returns the running instance's listening sockets for <paramref name="endpoint"/>, or an empty list when there is
    /// no such instance or it cannot be trusted or reached in time; then the caller opens its own sockets.
    /// </summary>
    public static async Task<List<Socket>> TryTakeOverAsync(IPEndPoint endpoint, TimeSpan timeout, ILogger logger, ReusePortMetrics metrics, CancellationToken cancellationToken)
    {
        var userId = NativeMethods.GetEffectiveUserId();
        var name = HandoffProtocol.RendezvousName(endpoint, userId);

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);

        using var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await connection.ConnectAsync(HandoffProtocol.RendezvousEndPoint(name), timeoutSource.Token).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            ReusePortLog.HandoffNone(logger, endpoint);
            return [];
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            ReusePortLog.HandoffFailed(logger, endpoint, $"no answer from the rendezvous within {timeout}");
            return [];
        }

        var owner = PeerCredentials.Get(connection);
        if (owner.UserId != userId)
        {
            ReusePortLog.HandoffPeerRefused(logger, owner.ProcessId, owner.UserId, endpoint, userId);
            ReusePortLog.HandoffFailed(logger, endpoint, $"the rendezvous is held by user id {owner.UserId}");
            return [];
        }

        var descriptors = new List<int>();
        var sockets = new List<Socket>();
        try
        {
            var request = new byte[HandoffProtocol.MessageLength];
            HandoffProtocol.WriteRequest(request, HandoffProtocol.TakeOver);
            await connection.SendAsync(request, SocketFlags.None, timeoutSource.Token).ConfigureAwait(false);

            // recvmsg has no async form in .NET; it waits with Poll, on a pool thread, within the deadline.
            var reply = new byte[HandoffProtocol.MessageLength];
            var received = await Task.Run(() => DescriptorPassing.Receive(connection, reply, descriptors, timeout), timeoutSource.Token).ConfigureAwait(false);

            // Wrap every descriptor first, so that each one is closed whatever happens next.
            foreach (var descriptor in descriptors)
            {
                sockets.Add(new Socket(new SafeSocketHandle(descriptor, ownsHandle: true)));
            }

            descriptors.Clear();

            if (received != reply.Length || !HandoffProtocol.TryReadReply(reply, out var count) || count != sockets.Count)
            {
                throw new InvalidDataException(received == 0 ? "the instance closed the connection" : "the instance sent an unexpected reply");
            }

            foreach (var socket in sockets)
            {
                Validate(socket, endpoint);
            }

            ReusePortLog.HandoffReceived(logger, sockets.Count, endpoint, owner.ProcessId);
            metrics.SocketsHandedOver(endpoint.ToString(), sockets.Count, sent: false);
            return sockets;
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or TimeoutException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            foreach (var descriptor in descriptors)
            {
                new SafeSocketHandle(descriptor, ownsHandle: true).Dispose();
            }

            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            ReusePortLog.HandoffFailed(logger, endpoint, e is OperationCanceledException ? $"no answer within {timeout}" : e.Message);
            return [];
        }
    }

    /// <summary>
    /// A handed-over descriptor is used only if it is what this endpoint would have bound itself: a listening TCP
    /// socket on the same address and port, in the same SO_REUSEPORT mode.
    /// </summary>
    private static void Validate(Socket socket, IPEndPoint endpoint)
    {
        if (socket.SocketType != SocketType.Stream || socket.ProtocolType != ProtocolType.Tcp)
        {
            throw new InvalidDataException("a handed-over descriptor is not a TCP socket");
        }

        if ((int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection)! == 0)
        {
            throw new InvalidDataException("a handed-over socket is not listening");
        }

        if (socket.LocalEndPoint is not IPEndPoint local || !local.Equals(endpoint))
        {
            throw new InvalidDataException($"a handed-over socket listens on {socket.LocalEndPoint}, not {endpoint}");
        }

        if (!ListenSocketBinder.HasReusePort(socket))
        {
            throw new InvalidDataException("a handed-over socket does not have SO_REUSEPORT set");
        }
    }
}
