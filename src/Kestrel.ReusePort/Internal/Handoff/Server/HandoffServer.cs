using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Handoff.Protocol;
using Kestrel.ReusePort.Internal.Posix;
using Kestrel.ReusePort.Internal.Rendezvous;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Handoff.Server;

/// <summary>
/// Offers an endpoint's listening sockets to the next instance of the same user.
/// </summary>
/// <remarks>
/// Where one instance at a time listens at the place (a directory or a fixed abstract name), the others that hold the
/// same sockets watch it over a connection and take the place over the moment it goes, so a new instance almost always
/// finds someone to take the sockets from, and a listening socket with connections in its queue is never closed while
/// the service runs. Where every instance has a place of its own (a discovered random name), nobody needs to watch.
/// </remarks>
internal sealed class HandoffServer : IAsyncDisposable
{
    private static readonly TimeSpan s_requestTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_followUpTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan s_failureRetryDelay = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan s_squattedRetryDelay = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_placeCheckInterval = TimeSpan.FromSeconds(1);

    private readonly IPEndPoint _endpoint;
    private readonly RendezvousPlace _place;
    private readonly IReadOnlyList<Socket> _sockets;
    private readonly IStopRequestHandler _stopRequests;
    private readonly Action<int> _handedOver;
    private readonly ILogger _logger;
    private readonly ReusePortMetrics _metrics;
    private readonly KeyValuePair<string, object?>[] _endpointTags;
    private readonly uint _userId = NativeMethods.GetEffectiveUserId();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, byte> _peers = new();
    private readonly Lock _gate = new();
    private Socket? _claimedPlace;
    private Socket? _listener;
    private int _watchers;
    private Task _running = Task.CompletedTask;
    private long _servingSince;

    public HandoffServer(
        IPEndPoint endpoint,
        RendezvousPlace place,
        IReadOnlyList<Socket> sockets,
        Socket? claimedPlace,
        IStopRequestHandler stopRequests,
        Action<int> handedOver,
        ILogger logger,
        ReusePortMetrics metrics,
        KeyValuePair<string, object?>[] endpointTags)
    {
        _endpoint = endpoint;
        _place = place;
        _sockets = sockets;
        _claimedPlace = claimedPlace;
        _stopRequests = stopRequests;
        _handedOver = handedOver;
        _logger = logger;
        _metrics = metrics;
        _endpointTags = endpointTags;
    }

    /// <summary>Starts offering the sockets, at the place the starting instance claimed, if it did.</summary>
    public void Start()
    {
        // From now on this instance serves the port: a stop request from an instance started later is obeyed.
        _servingSince = HandoffProtocol.MonotonicNow();
        _running = Task.Run(() => RunAsync(_stopping.Token));
    }

    /// <summary>
    /// Stops offering the sockets: gives the place up (leaving nothing behind unless a watcher is about to take it),
    /// then closes every rendezvous connection, so that a watcher takes over at once.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            await _running.ConfigureAwait(false);
            return;
        }

        _stopping.Cancel();
        lock (_gate)
        {
            _place.Release(successorsWaiting: Volatile.Read(ref _watchers) > 0);
            _claimedPlace?.Dispose();
            _claimedPlace = null;
            _listener?.Dispose();
        }

        foreach (var peer in _peers.Keys)
        {
            peer.Dispose();
        }

        // The source is not disposed: peers still finishing may observe its token, and it holds no timer.
        await _running.ConfigureAwait(false);
        _place.Dispose();
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var squatterLogged = false;
        var failureLogged = false;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                Socket? listener;
                lock (_gate)
                {
                    listener = stopping.IsCancellationRequested ? null : _claimedPlace ?? _place.TryListen();
                    _claimedPlace = null;
                    _listener = listener;
                }

                if (listener is null)
                {
                    if (!stopping.IsCancellationRequested)
                    {
                        squatterLogged = await WatchListenerAsync(squatterLogged, stopping).ConfigureAwait(false);
                    }

                    continue;
                }

                failureLogged = false;
                ReusePortLog.RendezvousOwned(_logger, _endpoint, _place.Description);
                await ServeAsync(listener, stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                // Stopping: whatever failed meanwhile no longer matters, and must not fail the host's shutdown (a
                // watched instance that closed its listener as this one stopped reset the connection, and the
                // SocketException, thrown out of DisposeAsync, aborted the process with 134 during a deploy).
                return;
            }
            catch (Exception e)
            {
                // E.g. the directory was removed: retried quickly, logged once until it works again.
                if (!failureLogged)
                {
                    ReusePortLog.RendezvousFailed(_logger, _endpoint, _place.Description, e);
                    failureLogged = true;
                }

                await DelayAsync(s_failureRetryDelay, stopping).ConfigureAwait(false);
            }
        }
    }

    private async Task ServeAsync(Socket listener, CancellationToken stopping)
    {
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var monitor = MonitorPlaceAsync(lost);
        try
        {
            while (true)
            {
                var peer = await listener.AcceptAsync(lost.Token).ConfigureAwait(false);
                _peers.TryAdd(peer, 0);
                _ = ServePeerAsync(peer, stopping);
            }
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            // The place no longer leads here: give it up and listen there again.
            ReusePortLog.RendezvousLost(_logger, _place.Description, _endpoint);
            lock (_gate)
            {
                _place.Release(successorsWaiting: true);
                listener.Dispose();
                _listener = null;
            }
        }
        finally
        {
            lost.Cancel();
            await monitor.ConfigureAwait(false);
        }
    }

    private async Task MonitorPlaceAsync(CancellationTokenSource lost)
    {
        using var timer = new PeriodicTimer(s_placeCheckInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(lost.Token).ConfigureAwait(false))
            {
                if (!_place.IsStillListening())
                {
                    lost.Cancel();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ServePeerAsync(Socket peer, CancellationToken stopping)
    {
        var watching = false;
        try
        {
            var credentials = PeerCredentials.Get(peer);
            if (credentials.UserId != _userId)
            {
                ReusePortLog.HandoffPeerRefused(_logger, credentials.ProcessId, credentials.UserId, _endpoint, _userId);
                return;
            }

            var request = await ReceiveMessageAsync(peer, HandoffProtocol.MessageLength, s_requestTimeout, stopping).ConfigureAwait(false);
            if (request is null || !HandoffProtocol.TryReadRequest(request, out var kind))
            {
                return;
            }

            if (kind == HandoffProtocol.TakeOver)
            {
                SendSockets(peer);
                ReusePortLog.HandoffSent(_logger, _sockets.Count, _endpoint, credentials.ProcessId);
                _metrics.SocketsHandedOver(_endpointTags, _sockets.Count, sent: true);
                _handedOver(credentials.ProcessId);

                // The new instance may come back on this connection, once it accepts on the sockets, to ask this one to
                // go. It is the old one only if it served before the other started; otherwise both are new.
                var followUp = await ReceiveMessageAsync(peer, HandoffProtocol.StopMessageLength, s_followUpTimeout, stopping).ConfigureAwait(false);
                if (followUp is not null && HandoffProtocol.TryReadStopRequest(followUp, out var requesterStartedAt))
                {
                    var obey = _servingSince < requesterStartedAt;
                    var reply = new byte[HandoffProtocol.MessageLength];
                    HandoffProtocol.WriteReply(reply, HandoffProtocol.CurrentVersion, obey ? HandoffProtocol.StopAccepted : HandoffProtocol.StopRefused);
                    await peer.SendAsync(reply, SocketFlags.None, stopping).ConfigureAwait(false);
                    if (obey)
                    {
                        _stopRequests.StopRequested(credentials.ProcessId, _endpoint);
                    }
                    else
                    {
                        ReusePortLog.StopRefused(_logger, credentials.ProcessId, _endpoint);
                    }
                }

                return;
            }

            if (kind != HandoffProtocol.Watch)
            {
                return;
            }

            // A watcher learns that this instance stopped when the connection closes; it never sends anything else.
            watching = true;
            Interlocked.Increment(ref _watchers);
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
            if (watching)
            {
                Interlocked.Decrement(ref _watchers);
            }

            _peers.TryRemove(peer, out _);
            peer.Dispose();
        }
    }

    /// <summary>Reads one whole message, or returns null if the peer closed the connection or took too long.</summary>
    private static async Task<byte[]?> ReceiveMessageAsync(Socket peer, int length, TimeSpan timeout, CancellationToken stopping)
    {
        var message = new byte[length];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(timeout);
        try
        {
            return await HandoffProtocol.ReceiveAsync(peer, message, deadline.Token).ConfigureAwait(false) ? message : null;
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return null;
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
            HandoffProtocol.WriteReply(reply, HandoffProtocol.CurrentVersion, descriptors.Length);
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
    /// Waits while another instance listens at the place. Returns when it is gone (its connection closed) or could not
    /// be watched, and tells whether a squatter of another user has been logged.
    /// </summary>
    private async Task<bool> WatchListenerAsync(bool squatterLogged, CancellationToken stopping)
    {
        if (_place.WatchEndPoint is not { } place)
        {
            await DelayAsync(s_retryDelay, stopping).ConfigureAwait(false);
            return squatterLogged;
        }

        using var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                timeout.CancelAfter(s_requestTimeout);
                await connection.ConnectAsync(place, timeout.Token).ConfigureAwait(false);
            }

            var owner = PeerCredentials.Get(connection);
            if (owner.UserId != _userId)
            {
                if (!squatterLogged)
                {
                    ReusePortLog.RendezvousSquatted(_logger, _place.Description, _endpoint, owner.ProcessId, owner.UserId);
                }

                await DelayAsync(s_squattedRetryDelay, stopping).ConfigureAwait(false);
                return true;
            }

            var request = new byte[HandoffProtocol.MessageLength];
            HandoffProtocol.WriteRequest(request, HandoffProtocol.CurrentVersion, HandoffProtocol.Watch);
            await connection.SendAsync(request, SocketFlags.None, stopping).ConfigureAwait(false);

            var buffer = new byte[1];
            while (await connection.ReceiveAsync(buffer, SocketFlags.None, stopping).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (!stopping.IsCancellationRequested && e is SocketException or OperationCanceledException)
        {
            // The listener went away between our attempt to listen and to connect, or hangs: try again shortly.
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
