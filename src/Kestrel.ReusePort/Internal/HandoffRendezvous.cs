using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Offers an endpoint's listening sockets to the next instance of the same user.
/// </summary>
/// <remarks>
/// One instance at a time owns the rendezvous name. The others that hold the same sockets watch the owner over a
/// connection and race to take the name the moment it closes, so a new instance almost always finds someone to take
/// the sockets from, and a listening socket with connections in its queue is never closed while the service runs.
/// </remarks>
internal sealed class HandoffRendezvous : IAsyncDisposable
{
    private static readonly TimeSpan s_requestTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan s_squattedRetryDelay = TimeSpan.FromSeconds(2);

    private readonly IPEndPoint _endpoint;
    private readonly IReadOnlyList<Socket> _sockets;
    private readonly ILogger _logger;
    private readonly ReusePortMetrics _metrics;
    private readonly uint _userId = NativeMethods.GetEffectiveUserId();
    private readonly string _name;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, byte> _peers = new();
    private Task _running = Task.CompletedTask;

    public HandoffRendezvous(IPEndPoint endpoint, IReadOnlyList<Socket> sockets, ILogger logger, ReusePortMetrics metrics)
    {
        _endpoint = endpoint;
        _sockets = sockets;
        _logger = logger;
        _metrics = metrics;
        _name = HandoffProtocol.RendezvousName(endpoint, _userId);
    }

    public void Start() => _running = Task.Run(() => RunAsync(_stopping.Token));

    /// <summary>Stops offering the sockets and closes every rendezvous connection, so that a watcher takes over.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            await _running.ConfigureAwait(false);
            return;
        }

        _stopping.Cancel();
        foreach (var peer in _peers.Keys)
        {
            peer.Dispose();
        }

        // The source is not disposed: peers still finishing may observe its token, and it holds no timer.
        await _running.ConfigureAwait(false);
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var squatterLogged = false;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    listener.Bind(HandoffProtocol.RendezvousEndPoint(_name));
                    listener.Listen(16);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    listener.Dispose();
                    squatterLogged = await WatchOwnerAsync(squatterLogged, stopping).ConfigureAwait(false);
                    continue;
                }

                ReusePortLog.RendezvousOwned(_logger, _endpoint, _name);
                await ServeAsync(listener, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!stopping.IsCancellationRequested)
            {
                ReusePortLog.RendezvousFailed(_logger, _endpoint, e);
                await DelayAsync(s_squattedRetryDelay, stopping).ConfigureAwait(false);
            }
        }
    }

    private async Task ServeAsync(Socket listener, CancellationToken stopping)
    {
        using (listener)
        {
            while (true)
            {
                var peer = await listener.AcceptAsync(stopping).ConfigureAwait(false);
                _peers.TryAdd(peer, 0);
                _ = ServePeerAsync(peer, stopping);
            }
        }
    }

    private async Task ServePeerAsync(Socket peer, CancellationToken stopping)
    {
        try
        {
            var credentials = PeerCredentials.Get(peer);
            if (credentials.UserId != _userId)
            {
                ReusePortLog.HandoffPeerRefused(_logger, credentials.ProcessId, credentials.UserId, _endpoint, _userId);
                return;
            }

            var request = new byte[HandoffProtocol.MessageLength];
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                timeout.CancelAfter(s_requestTimeout);
                var read = 0;
                while (read < request.Length)
                {
                    var n = await peer.ReceiveAsync(request.AsMemory(read), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }

                    read += n;
                }
            }

            if (!HandoffProtocol.TryReadRequest(request, out var kind))
            {
                return;
            }

            if (kind == HandoffProtocol.TakeOver)
            {
                SendSockets(peer);
                ReusePortLog.HandoffSent(_logger, _sockets.Count, _endpoint, credentials.ProcessId);
                _metrics.SocketsHandedOver(_endpoint.ToString(), _sockets.Count, sent: true);
                return;
            }

            // A watcher learns that this instance stopped when the connection closes; it never sends anything else.
            var buffer = new byte[1];
            while (await peer.ReceiveAsync(buffer, SocketFlags.None, stopping).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or System.IO.IOException or ObjectDisposedException or TimeoutException)
        {
            // One peer's failure is its own; the rendezvous goes on serving the others.
        }
        finally
        {
            _peers.TryRemove(peer, out _);
            peer.Dispose();
        }
    }

    private void SendSockets(Socket peer)
    {
        var descriptors = new int[_sockets.Count];
        var added = new bool[_sockets.Count];
        try
        {
            for (var i = 0; i < descriptors.Length; i++)
            {
                _sockets[i].SafeHandle.DangerousAddRef(ref added[i]);
                descriptors[i] = (int)_sockets[i].SafeHandle.DangerousGetHandle();
            }

            var reply = new byte[HandoffProtocol.MessageLength];
            HandoffProtocol.WriteReply(reply, descriptors.Length);
            DescriptorPassing.Send(peer, reply, descriptors, s_requestTimeout);
        }
        finally
        {
            for (var i = 0; i < descriptors.Length; i++)
            {
                if (added[i])
                {
                    _sockets[i].SafeHandle.DangerousRelease();
                }
            }
        }
    }

    /// <summary>
    /// Waits while another instance owns the name. Returns when it is gone (its connection closed) or could not be
    /// watched, and tells whether a squatter of another user has been logged.
    /// </summary>
    private async Task<bool> WatchOwnerAsync(bool squatterLogged, CancellationToken stopping)
    {
        using var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                timeout.CancelAfter(s_requestTimeout);
                await connection.ConnectAsync(HandoffProtocol.RendezvousEndPoint(_name), timeout.Token).ConfigureAwait(false);
            }

            var owner = PeerCredentials.Get(connection);
            if (owner.UserId != _userId)
            {
                if (!squatterLogged)
                {
                    ReusePortLog.RendezvousSquatted(_logger, _name, _endpoint, owner.ProcessId, owner.UserId);
                }

                await DelayAsync(s_squattedRetryDelay, stopping).ConfigureAwait(false);
                return true;
            }

            var request = new byte[HandoffProtocol.MessageLength];
            HandoffProtocol.WriteRequest(request, HandoffProtocol.Watch);
            await connection.SendAsync(request, SocketFlags.None, stopping).ConfigureAwait(false);

            var buffer = new byte[1];
            while (await connection.ReceiveAsync(buffer, SocketFlags.None, stopping).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (!stopping.IsCancellationRequested && e is SocketException or OperationCanceledException)
        {
            // The owner went away between bind and connect, or hangs: try to take the name again shortly.
            await DelayAsync(s_retryDelay, stopping).ConfigureAwait(false);
        }

        return squatterLogged;
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken stopping)
    {
        try
        {
            await Task.Delay(delay, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
