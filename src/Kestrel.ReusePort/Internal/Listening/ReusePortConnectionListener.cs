using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Handoff;
using Kestrel.ReusePort.Internal.Handoff.Client;
using Kestrel.ReusePort.Internal.Handoff.Server;
using Kestrel.ReusePort.Internal.Rendezvous;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// The one <see cref="IConnectionListener"/> Kestrel sees for an endpoint, in front of a group of SO_REUSEPORT sockets
/// that each run their own accept loop.
/// </summary>
/// <remarks>
/// It starts with the endpoint's address held by bound sockets that do not listen (a bind conflict fails the start,
/// yet the kernel gives them no connection), optionally fed by a private warm-up socket. <see cref="ActivateAsync"/>
/// then takes the running instance's sockets over, or makes its own listen, and starts accepting: only from then on
/// does the instance hold the port's listening sockets and take connections from it.
/// </remarks>
internal sealed class ReusePortConnectionListener : IConnectionListener
{
    private static readonly TimeSpan s_maxAcceptRetryDelay = TimeSpan.FromSeconds(1);

    private readonly ListenerContext _context;
    private readonly RendezvousLocation? _rendezvous;
    private readonly SocketConnectionContextFactory _connectionFactory;
    private readonly KeyValuePair<string, object?>[] _endpointTags;
    private readonly List<Socket> _reserved;
    private readonly Channel<ConnectionContext> _accepted = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions
    {
        // Kestrel runs one accept loop per listener; letting it continue on the accepting thread saves a dispatch.
        SingleReader = false,
        SingleWriter = false,
        AllowSynchronousContinuations = true,
    });
    private readonly CancellationTokenSource _stopAccepting = new();
    private readonly SemaphoreSlim _transition = new(1, 1);
    private List<Socket> _sockets = [];
    private HandoffServer? _handoff;
    private Task[] _acceptLoops = [];
    private Task? _stopped;
    private bool _active;
    private bool _handedOver;
    private int _disposed;

    /// <param name="endPoint">The endpoint, with the port the sockets are bound to.</param>
    /// <param name="reserved">Sockets bound to the endpoint, not listening.</param>
    /// <param name="rendezvous">Where to meet other instances; null for no socket handoff.</param>
    /// <param name="context">What the factory's listeners share.</param>
    public ReusePortConnectionListener(IPEndPoint endPoint, List<Socket> reserved, RendezvousLocation? rendezvous, ListenerContext context)
    {
        EndPoint = endPoint;
        _reserved = reserved;
        _rendezvous = rendezvous;
        _context = context;
        _connectionFactory = new SocketConnectionContextFactory(ConnectionFactoryOptions.From(context.SocketOptions, out var fromKestrel), context.ConnectionLogger);
        if (!fromKestrel)
        {
            ReusePortLog.ConnectionOptionsWithoutKestrelsPool(context.Logger, endPoint);
        }
        _endpointTags = ReusePortMetrics.EndpointTags(endPoint);
    }

    public EndPoint EndPoint { get; }

    /// <summary>The attributes of this endpoint's measurements.</summary>
    public KeyValuePair<string, object?>[] EndpointTags => _endpointTags;

    public bool IsActive => Volatile.Read(ref _active);

    /// <summary>Whether another instance took this endpoint's sockets over, and so keeps accepting from them when this one stops.</summary>
    public bool HandedOver => Volatile.Read(ref _handedOver);

    /// <summary>The listening sockets this process holds for the endpoint now: none before activation or once stopped.</summary>
    public int ListeningSocketCount => IsActive && Volatile.Read(ref _stopped) is null ? _sockets.Count : 0;

    /// <summary>
    /// Takes the running instance's sockets over (or lets this instance's own sockets listen), and starts accepting.
    /// Returns the instance the sockets came from, if any, with the connection still open.
    /// </summary>
    public async Task<Predecessor?> ActivateAsync(CancellationToken cancellationToken)
    {
        await _transition.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (_active || _stopped is not null)
            {
                return null;
            }

            var taken = await SocketTakeover.AcquireAsync((IPEndPoint)EndPoint, _reserved, _rendezvous, _context, OnHandedOver, _endpointTags, cancellationToken).ConfigureAwait(false);
            try
            {
                _sockets = taken.Sockets;
                StartAccepting();
                _handoff = taken.Server;
                _handoff?.Start();
            }
            catch
            {
                foreach (var socket in taken.Sockets)
                {
                    socket.Dispose();
                }

                if (taken.Server is not null)
                {
                    await taken.Server.DisposeAsync().ConfigureAwait(false);
                }

                taken.Predecessor?.Dispose();
                throw;
            }

            Volatile.Write(ref _active, true);
            ReusePortLog.Listening(_context.Logger, EndPoint, taken.Sockets.Count, taken.Inherited);
            return taken.Predecessor;
        }
        finally
        {
            _transition.Release();
        }
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
        // Waits for an activation in progress, so that nothing it opens is left behind.
        await _transition.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var socket in _reserved)
            {
                socket.Dispose();
            }

            _reserved.Clear();

            // The rendezvous goes first, so a watching successor takes the place over while this instance drains.
            if (_handoff is not null)
            {
                await _handoff.DisposeAsync().ConfigureAwait(false);
            }

            // Cancelling an accept that already took a connection from the kernel still returns it, so the loops
            // stop without dropping anything; the sockets are closed only once no accept is in flight.
            _stopAccepting.Cancel();
            await Task.WhenAll(_acceptLoops).ConfigureAwait(false);

            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }

            _accepted.Writer.TryComplete();
        }
        finally
        {
            _transition.Release();
        }
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

    private void OnHandedOver(int processId)
    {
        Volatile.Write(ref _handedOver, true);
        _context.HandedOver(processId);
    }

    private void StartAccepting()
    {
        // A failed accept backs off on a timer, and the runtime starts its timer thread on the first timer of the process.
        // Accepts fail mostly when the process is out of descriptors, and then the runtime cannot start a thread
        // (Task.Delay throws OutOfMemoryException, and timers stay broken for the life of the process): start it now.
        _ = Task.Delay(1);

        // Descriptors the runtime needs once connections have taken the rest (see DescriptorReserve).
        if (!DescriptorReserve.Shared.TryTake(out _))
        {
            ReusePortLog.DescriptorReserveUnavailable(_context.Logger, DescriptorReserve.Size, DescriptorReserve.Limit);
        }

        _acceptLoops = new Task[_sockets.Count];
        for (var i = 0; i < _sockets.Count; i++)
        {
            // A socket accepted from a listener that knows its own (specific) address inherits it; otherwise the
            // connection asks the kernel (getsockname) for it, one system call per connection. Kestrel's listener
            // reads it after binding; every socket of the group reads it here, once.
            _ = _sockets[i].LocalEndPoint;
            var index = i;
            _acceptLoops[i] = Task.Run(() => AcceptLoopAsync(index));
        }
    }

    private async Task AcceptLoopAsync(int index)
    {
        var socket = _sockets[index];
        var tags = ReusePortMetrics.SocketTags(_endpointTags, index);
        var stopping = _stopAccepting.Token;
        var consecutiveFailures = 0;

        while (true)
        {
            // Out of descriptors: connections wait in the listen queue until the reserve can be set aside again.
            if (!DescriptorReserve.Shared.IsHeld && !await WaitForDescriptorsAsync(stopping).ConfigureAwait(false))
            {
                return;
            }

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
                _context.Metrics.AcceptFailed(tags, e.SocketErrorCode);
                ReusePortLog.AcceptedConnectionGone(_context.Logger, index, EndPoint, e.SocketErrorCode);
                continue;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TooManyOpenSockets)
            {
                // EMFILE or ENFILE: something besides this loop's connections took the last descriptors.
                _context.Metrics.AcceptFailed(tags, e.SocketErrorCode);
                RanOutOfDescriptors();
                continue;
            }
            catch (Exception e)
            {
                // Kestrel gives up on a listener whose accept throws, so this loop never lets an error out. Running out
                // of memory leaves the connection queued in the kernel: retrying at once would spin, so the retry backs
                // off, and the other sockets keep accepting meanwhile.
                consecutiveFailures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(s_maxAcceptRetryDelay.TotalMilliseconds, 5 << Math.Min(consecutiveFailures, 10)));
                var error = e is SocketException socketException ? socketException.SocketErrorCode : SocketError.SocketError;
                _context.Metrics.AcceptFailed(tags, error);
                ReusePortLog.AcceptFailed(_context.Logger, index, EndPoint, e is SocketException ? error.ToString() : e.GetType().Name, (int)delay.TotalMilliseconds, e);
                if (!await BackOffAsync(delay, stopping).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            consecutiveFailures = 0;
            if (!DescriptorReserve.HasHeadroom(accepted))
            {
                // This connection took the last free descriptors: it is served, and the reserve goes to the runtime.
                RanOutOfDescriptors();
            }

            if (TryCreateConnection(accepted, index) is { } connection)
            {
                _context.Metrics.ConnectionAccepted(tags);
                _context.Tracker.Track(connection);
                _accepted.Writer.TryWrite(connection);
            }
        }
    }

    private void RanOutOfDescriptors()
    {
        if (DescriptorReserve.Shared.Release())
        {
            ReusePortLog.DescriptorsExhausted(_context.Logger, DescriptorReserve.Limit, DescriptorReserve.Size);
        }
    }

    /// <summary>Waits until the reserve of descriptors can be set aside again; false once stopping.</summary>
    private async Task<bool> WaitForDescriptorsAsync(CancellationToken stopping)
    {
        // Waits before the first try too: right after the release, the reserve's own descriptors are free, and taking
        // them back at once would cycle between running out and resuming without giving the runtime any of them.
        var attempts = 0;
        while (true)
        {
            if (!await BackOffAsync(TimeSpan.FromMilliseconds(Math.Min(s_maxAcceptRetryDelay.TotalMilliseconds, 5 << Math.Min(attempts, 10))), stopping).ConfigureAwait(false))
            {
                return false;
            }

            attempts++;
            if (DescriptorReserve.Shared.TryTake(out var taken))
            {
                if (taken)
                {
                    ReusePortLog.DescriptorsAvailable(_context.Logger, (long)DescriptorReserve.Shared.SinceReleased.TotalMilliseconds);
                }

                return true;
            }
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
            // No timer (see StartAccepting): wait on this thread rather than let the error end the loop.
            stopping.WaitHandle.WaitOne(delay);
        }

        return !stopping.IsCancellationRequested;
    }

    /// <summary>
    /// A warm-up connection takes the path of a connection from the port, tracking included, so that the code the first
    /// client runs has run once; only the accepted-connections counter leaves it out.
    /// </summary>
    public void DispatchWarmup(Socket accepted)
    {
        if (TryCreateConnection(accepted, socketIndex: -1) is { } connection)
        {
            _context.Tracker.Track(connection);
            _accepted.Writer.TryWrite(connection);
        }
    }

    private ConnectionContext? TryCreateConnection(Socket accepted, int socketIndex)
    {
        try
        {
            // A new socket has Nagle on; Kestrel's transport turns it off for TCP unless told otherwise.
            if (_context.SocketOptions.NoDelay)
            {
                accepted.NoDelay = true;
            }

            return _connectionFactory.Create(accepted);
        }
        catch (Exception e)
        {
            ReusePortLog.ConnectionSetupFailed(_context.Logger, socketIndex, EndPoint, e);
            accepted.Dispose();
            return null;
        }
    }
}
