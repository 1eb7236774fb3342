using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// The one <see cref="IConnectionListener"/> Kestrel sees for an endpoint, in front of a group of SO_REUSEPORT sockets
/// that each run their own accept loop.
/// </summary>
internal sealed class ReusePortConnectionListener : IConnectionListener
{
    private static readonly TimeSpan s_maxAcceptRetryDelay = TimeSpan.FromSeconds(1);

    private readonly List<Socket> _sockets;
    private readonly SocketConnectionContextFactory _connectionFactory;
    private readonly bool _noDelay;
    private readonly ConnectionTracker? _tracker;
    private readonly HandoffRendezvous? _rendezvous;
    private readonly ReusePortMetrics _metrics;
    private readonly ILogger _logger;
    private readonly string _endpointTag;
    private readonly Channel<ConnectionContext> _accepted = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions
    {
        // Kestrel runs one accept loop per listener; letting it continue on the accepting thread saves a dispatch.
        SingleReader = false,
        SingleWriter = false,
        AllowSynchronousContinuations = true,
    });
    private readonly CancellationTokenSource _stopAccepting = new();
    private Task[] _acceptLoops = [];
    private Task? _stopped;
    private int _disposed;

    public ReusePortConnectionListener(
        IPEndPoint endPoint,
        List<Socket> sockets,
        SocketConnectionContextFactory connectionFactory,
        bool noDelay,
        ConnectionTracker? tracker,
        HandoffRendezvous? rendezvous,
        ReusePortMetrics metrics,
        ILogger logger)
    {
        EndPoint = endPoint;
        _sockets = sockets;
        _connectionFactory = connectionFactory;
        _noDelay = noDelay;
        _tracker = tracker;
        _rendezvous = rendezvous;
        _metrics = metrics;
        _logger = logger;
        _endpointTag = endPoint.ToString();
    }

    public EndPoint EndPoint { get; }

    public int SocketCount => _sockets.Count;

    /// <summary>This process's descriptors of the group's sockets, for tests to inspect.</summary>
    internal IReadOnlyList<Socket> Sockets => _sockets;

    public void Start()
    {
        // A failed accept backs off on a timer, and the runtime starts its timer thread on the first timer of the process.
        // Accepts fail mostly when the process is out of descriptors, and then the runtime cannot start a thread
        // (Task.Delay throws OutOfMemoryException, and timers stay broken for the life of the process): start it now.
        _ = Task.Delay(1);

        _metrics.SocketsChanged(_endpointTag, _sockets.Count);
        _acceptLoops = new Task[_sockets.Count];
        for (var i = 0; i < _sockets.Count; i++)
        {
            var index = i;
            _acceptLoops[i] = Task.Run(() => AcceptLoopAsync(index));
        }

        _rendezvous?.Start();
    }

    public ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        if (_accepted.Reader.TryRead(out var connection))
        {
            return new(connection);
        }

        return WaitAndAcceptAsync(cancellationToken);
    }

    // Kestrel waits here whenever no connection is queued; a pooled builder saves a state machine per wait.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ConnectionContext?> WaitAndAcceptAsync(CancellationToken cancellationToken)
    {
        while (await _accepted.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_accepted.Reader.TryRead(out var connection))
            {
                return connection;
            }
        }

        // Every socket is closed and every connection accepted before that has been handed out.
        return null;
    }

    /// <summary>
    /// Stops accepting and closes this process's descriptors of the sockets. Connections accepted until then are
    /// still returned by <see cref="AcceptAsync"/>; a successor holding the same sockets keeps serving their queues.
    /// </summary>
    public Task StopAcceptingAsync()
    {
        lock (_stopAccepting)
        {
            return _stopped ??= StopCoreAsync();
        }
    }

    private async Task StopCoreAsync()
    {
        // The rendezvous goes first, so a watching successor takes the name over while this instance drains.
        if (_rendezvous is not null)
        {
            await _rendezvous.DisposeAsync().ConfigureAwait(false);
        }

        // Cancelling an accept that already took a connection from the kernel still returns it, so the loops
        // stop without dropping anything; the sockets are closed only once no accept is in flight.
        _stopAccepting.Cancel();
        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);

        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        _metrics.SocketsChanged(_endpointTag, -_sockets.Count);
        _accepted.Writer.TryComplete();
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => new(StopAcceptingAsync());

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopAcceptingAsync().ConfigureAwait(false);

        // Kestrel stops asking before disposing; whatever it did not take is closed, not leaked.
        while (_accepted.Reader.TryRead(out var connection))
        {
            connection.Abort();
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _connectionFactory.Dispose();
        _stopAccepting.Dispose();
    }

    private async Task AcceptLoopAsync(int index)
    {
        var socket = _sockets[index];
        var tags = ReusePortMetrics.SocketTags(_endpointTag, index);
        var stopping = _stopAccepting.Token;
        var consecutiveFailures = 0;

        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await socket.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                // The client gave up while queued; the next connection is already waiting.
                _metrics.AcceptFailed(tags, e.SocketErrorCode);
                ReusePortLog.AcceptedConnectionGone(_logger, index, EndPoint, e.SocketErrorCode);
                continue;
            }
            catch (Exception e)
            {
                // Kestrel gives up on a listener whose accept throws, so this loop never lets an error out. Running out
                // of descriptors or memory leaves the connection queued in the kernel: retrying at once would spin, so
                // the retry backs off, and the other sockets keep accepting meanwhile.
                consecutiveFailures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(s_maxAcceptRetryDelay.TotalMilliseconds, 5 << Math.Min(consecutiveFailures, 10)));
                var error = e is SocketException socketException ? socketException.SocketErrorCode : SocketError.SocketError;
                _metrics.AcceptFailed(tags, error);
                ReusePortLog.AcceptFailed(_logger, index, EndPoint, e is SocketException ? error.ToString() : e.GetType().Name, (int)delay.TotalMilliseconds, e);
                if (!await BackOffAsync(delay, stopping).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            consecutiveFailures = 0;
            Dispatch(accepted, index, tags);
        }
    }

    /// <summary>Waits before the next accept; false once stopping.</summary>
    private static async Task<bool> BackOffAsync(TimeSpan delay, CancellationToken stopping)
    {
        try
        {
            await Task.Delay(delay, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (OutOfMemoryException)
        {
            // No timer (see Start): wait on this thread rather than let the error end the loop.
            stopping.WaitHandle.WaitOne(delay);
        }

        return !stopping.IsCancellationRequested;
    }

    private void Dispatch(Socket accepted, int index, KeyValuePair<string, object?>[] tags)
    {
        ConnectionContext connection;
        try
        {
            // A new socket has Nagle on; Kestrel's transport turns it off for TCP unless told otherwise.
            if (_noDelay)
            {
                accepted.NoDelay = true;
            }

            connection = _connectionFactory.Create(accepted);
        }
        catch (Exception e)
        {
            ReusePortLog.ConnectionSetupFailed(_logger, index, EndPoint, e);
            accepted.Dispose();
            return;
        }

        _metrics.ConnectionAccepted(tags);
        _tracker?.Track(connection);
        _accepted.Writer.TryWrite(connection);
    }
}
