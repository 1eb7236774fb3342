using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort;

/// <summary>
/// A Kestrel transport that binds every IP endpoint with several SO_REUSEPORT listening sockets, each with its own
/// accept loop, behind one <see cref="IConnectionListener"/>. Accepted sockets become connections through Kestrel's
/// sockets transport, configured by <see cref="SocketTransportOptions"/>. Other endpoints (Unix domain sockets, file
/// handles) are bound by Kestrel's stock <see cref="SocketTransportFactory"/>.
/// </summary>
/// <remarks>
/// Under a host (<c>UseReusePortSockets</c>), an endpoint's address is held from the bind, but the instance warms up
/// and accepts on the port only once the application has started; used on its own, the factory accepts at once.
/// </remarks>
public sealed class ReusePortSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly ReusePortSocketTransportOptions _options;
    private readonly SocketTransportOptions _socketOptions;
    private readonly SocketTransportFactory _stock;
    private readonly ILogger _logger;
    private readonly ListenerContext _context;
    private readonly List<ReusePortConnectionListener> _listeners = [];
    private readonly Lock _gate = new();
    private RendezvousLocation? _rendezvous;
    private bool _rendezvousResolved;
    private Activation _activation = Activation.Immediate;
    private Action<int>? _stopRequested;
    private int _migrateRequestLogged;

    /// <summary>Creates the factory; Kestrel resolves it from dependency injection.</summary>
    /// <param name="options">The SO_REUSEPORT options.</param>
    /// <param name="socketOptions">Kestrel's sockets transport options, applied to every accepted connection.</param>
    /// <param name="loggerFactory">The logger factory.</param>
    /// <param name="meterFactory">Creates the <c>Kestrel.ReusePort</c> meter; a standalone meter without it.</param>
    public ReusePortSocketTransportFactory(
        IOptions<ReusePortSocketTransportOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        ILoggerFactory loggerFactory,
        IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(socketOptions);
        ArgumentNullException.ThrowIfNull(loggerFactory);

        _options = options.Value;
        var failures = ReusePortSocketTransportOptionsValidator.GetFailures(_options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ReusePortSocketTransportOptions), failures);
        }

        _socketOptions = socketOptions.Value;
        _stock = new SocketTransportFactory(socketOptions, loggerFactory);
        _logger = loggerFactory.CreateLogger("Kestrel.ReusePort");
        Metrics = new ReusePortMetrics(meterFactory, ObserveListeningSockets);
        Tracker = new ConnectionTracker(Metrics);
        Lifetime = new DrainSignal(_logger);
        _context = new ListenerContext
        {
            Options = _options,
            SocketOptions = _socketOptions,

            // Connection-level messages keep the category of Kestrel's own transport, so existing log filters apply.
            ConnectionLogger = loggerFactory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"),
            Logger = _logger,
            Metrics = Metrics,
            Tracker = Tracker,
            StopRequested = pid => _stopRequested?.Invoke(pid),
            HandedOver = pid => Successor.HandedOver(pid, ActiveListeners()),
        };
    }

    private enum Activation
    {
        /// <summary>No host drives this factory: every endpoint accepts as soon as it is bound.</summary>
        Immediate,

        /// <summary>The host is starting: endpoints warm up and wait for <see cref="ActivateAsync"/>.</summary>
        Deferred,
    }

    internal ReusePortMetrics Metrics { get; }

    /// <summary>When this instance started (its transport was created), on the machine's monotonic clock.</summary>
    internal long StartedAt { get; } = HandoffProtocol.MonotonicNow();

    internal ConnectionTracker Tracker { get; }

    /// <summary>Whether a successor holds this instance's sockets, so that stopping it is a replacement, not a removal.</summary>
    internal SuccessorWatch Successor { get; } = new();

    internal ILogger Logger => _logger;

    /// <summary>The drain as the app sees it (<see cref="IReusePortLifetime"/>).</summary>
    internal DrainSignal Lifetime { get; }

    /// <summary>Whether a stopping host has begun draining this transport.</summary>
    internal bool IsDraining => Tracker.IsDraining;

    internal ReusePortMode Mode => ReusePortPlatform.Decide(ReusePortPlatform.IsLoadBalancingSupported, _options.UnsupportedPlatformBehavior);

    /// <inheritdoc />
    public bool CanBind(EndPoint endpoint) => _stock.CanBind(endpoint);

    /// <inheritdoc />
    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);

        if (endpoint is not IPEndPoint ipEndPoint)
        {
            return await _stock.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }

        switch (Mode)
        {
            case ReusePortMode.StockSockets:
                ReusePortLog.UnsupportedPlatform(_logger, RuntimeInformation.OSDescription, endpoint);
                return await _stock.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
            case ReusePortMode.Throw:
                throw new PlatformNotSupportedException(string.Create(CultureInfo.InvariantCulture,
                    $"Cannot bind {endpoint}: SO_REUSEPORT load balancing needs Linux 3.9 or later, and this is {RuntimeInformation.OSDescription}. " +
                    $"Set {nameof(ReusePortSocketTransportOptions)}.{nameof(ReusePortSocketTransportOptions.UnsupportedPlatformBehavior)} to " +
                    $"{nameof(UnsupportedPlatformBehavior.UseStockSockets)} to run with one stock socket per endpoint here."));
        }

        ReusePortSocketTransportOptionsValidator.ValidateBacklog(_socketOptions.Backlog);
        LogMigrateRequestOnce();
        if (_socketOptions.CreateBoundListenSocket != SocketTransportOptions.CreateDefaultBoundListenSocket)
        {
            ReusePortLog.CustomBindIgnored(_logger, endpoint);
        }

        // Bound now, so that a conflict fails the start with its reason; listening comes with activation.
        var reserved = new List<Socket>();
        ListenSocketBinder.Bind(ipEndPoint, _options.ListenerCount, reserved);
        ReusePortConnectionListener listener;
        bool deferred;
        try
        {
            var bound = (IPEndPoint)reserved[0].LocalEndPoint!;

            // Port 0 asks for a new port, which no running instance can have.
            var rendezvous = _options.SocketHandoff && bound.Port != 0 && ipEndPoint.Port != 0 && NativeMethods.IsSupported ? Rendezvous() : null;
            listener = new ReusePortConnectionListener(bound, reserved, rendezvous, _context);
            lock (_gate)
            {
                _listeners.Add(listener);
                deferred = _activation == Activation.Deferred;
            }
        }
        catch
        {
            foreach (var socket in reserved)
            {
                socket.Dispose();
            }

            throw;
        }

        if (deferred)
        {
            if (_options.Warmup.Enabled)
            {
                listener.StartWarmup();
            }
        }
        else
        {
            using var predecessor = await listener.ActivateAsync(cancellationToken).ConfigureAwait(false);
        }

        return listener;
    }

    /// <summary>
    /// Called by the host as it starts: endpoints bound from now on warm up and wait for <see cref="ActivateAsync"/>.
    /// <paramref name="stopRequested"/> stops the app when an instance that took the sockets over asks it to.
    /// </summary>
    internal void DeferActivation(Action<int> stopRequested)
    {
        lock (_gate)
        {
            _activation = Activation.Deferred;
            _stopRequested = stopRequested;
        }
    }

    /// <summary>The endpoints bound but not accepting yet, with their warm-up sockets.</summary>
    internal List<ReusePortConnectionListener> PendingListeners()
    {
        lock (_gate)
        {
            return _listeners.FindAll(l => !l.IsActive);
        }
    }

    /// <summary>The endpoints accepting from the port (or that did, before they stopped).</summary>
    internal List<ReusePortConnectionListener> ActiveListeners()
    {
        lock (_gate)
        {
            return _listeners.FindAll(l => l.IsActive);
        }
    }

    /// <summary>
    /// Makes every pending endpoint accept (taking sockets over where an instance runs), and every endpoint bound
    /// later accept at once. Returns the instances the sockets came from.
    /// </summary>
    internal async Task<List<Predecessor>> ActivateAsync(CancellationToken cancellationToken)
    {
        List<ReusePortConnectionListener> pending;
        lock (_gate)
        {
            _activation = Activation.Immediate;
            pending = _listeners.FindAll(l => !l.IsActive);
        }

        var predecessors = new List<Predecessor>();
        try
        {
            foreach (var listener in pending)
            {
                if (await listener.ActivateAsync(cancellationToken).ConfigureAwait(false) is { } predecessor)
                {
                    predecessors.Add(predecessor);
                }
            }
        }
        catch
        {
            foreach (var predecessor in predecessors)
            {
                predecessor.Dispose();
            }

            throw;
        }

        return predecessors;
    }

    /// <summary>
    /// Stops accepting on every endpoint and returns them. From then on responses ask clients to move (see
    /// <see cref="IsDraining"/>), and every connection that ends is counted by how it ended.
    /// </summary>
    internal async Task<int> StopAcceptingAsync()
    {
        ReusePortConnectionListener[] listeners;
        lock (_gate)
        {
            listeners = [.. _listeners];
        }

        var stops = new Task[listeners.Length];
        for (var i = 0; i < listeners.Length; i++)
        {
            stops[i] = listeners[i].StopAcceptingAsync();
        }

        await Task.WhenAll(stops).ConfigureAwait(false);

        // Only now: a client sent away while this instance still accepted could come straight back to it.
        Tracker.BeginDrain();
        return listeners.Length;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _rendezvous?.Dispose();
            _rendezvous = null;
        }

        Lifetime.Dispose();
    }

    private List<Measurement<long>> ObserveListeningSockets()
    {
        lock (_gate)
        {
            return _listeners.Where(l => l.ListeningSocketCount > 0).Select(l => new Measurement<long>(l.ListeningSocketCount, l.EndpointTags)).ToList();
        }
    }

    /// <summary>Where instances meet, decided at the first bind that needs it; null when the environment's place is refused.</summary>
    private RendezvousLocation? Rendezvous()
    {
        lock (_gate)
        {
            if (!_rendezvousResolved)
            {
                _rendezvous = RendezvousLocation.Resolve(_options, Environment.GetEnvironmentVariable, _logger);
                _rendezvousResolved = true;
            }

            return _rendezvous;
        }
    }

    private void LogMigrateRequestOnce()
    {
        if (Interlocked.Exchange(ref _migrateRequestLogged, 1) != 0)
        {
            return;
        }

        var value = TcpMigrateRequest.Read();
        var meaning = (value, _options.SocketHandoff) switch
        {
            (null, true) => "this kernel cannot move queued connections between the sockets of a port; instances hand their sockets over instead, so stopping one loses nothing.",
            (null, false) => "this kernel cannot move queued connections between the sockets of a port, and SocketHandoff is off: stopping an instance resets the connections waiting in its sockets' queues.",
            (0, true) => "closing a listening socket resets the connections queued on it; rolling deploys stay lossless because a new instance takes the running instance's sockets over instead of opening its own.",
            (0, false) => "closing a listening socket resets the connections queued on it, and SocketHandoff is off: stopping an instance resets the connections waiting in its sockets' queues.",
            (_, _) => "the kernel moves the connections queued on a closing socket to the other sockets of its port.",
        };
        ReusePortLog.TcpMigrateRequest(_logger, value?.ToString(CultureInfo.InvariantCulture) ?? "unavailable", meaning);
    }
}
