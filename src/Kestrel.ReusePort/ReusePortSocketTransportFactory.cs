using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Internal.Handoff.Server;
using Kestrel.ReusePort.Internal.Hosting;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Posix;
using Kestrel.ReusePort.Internal.Rendezvous;
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
    private readonly ListenerActivation _activation;
    private readonly Lock _gate = new();
    private RendezvousLocation? _rendezvous;
    private bool _rendezvousResolved;
    private int _migrateRequestLogged;

    /// <summary>Creates the factory for use on its own, without a host: every endpoint accepts as soon as it is bound.</summary>
    /// <param name="options">The SO_REUSEPORT options.</param>
    /// <param name="socketOptions">Kestrel's sockets transport options, applied to every accepted connection.</param>
    /// <param name="loggerFactory">The logger factory.</param>
    /// <param name="meterFactory">Creates the <c>Kestrel.ReusePort</c> meter; a standalone meter without it.</param>
    public ReusePortSocketTransportFactory(
        IOptions<ReusePortSocketTransportOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        ILoggerFactory loggerFactory,
        IMeterFactory? meterFactory = null)
        : this(Validated(options), socketOptions, loggerFactory, new ListenerActivation(), meterFactory)
    {
    }

    private ReusePortSocketTransportFactory(
        IOptions<ReusePortSocketTransportOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        ILoggerFactory loggerFactory,
        ListenerActivation activation,
        IMeterFactory? meterFactory)
        : this(options, socketOptions, loggerFactory, activation, new ReusePortMetrics(meterFactory, activation.ObserveListeningSockets), null, null)
    {
    }

    /// <summary>
    /// Creates the factory of a host (<c>UseReusePortSockets</c>), whose options were validated at its start, with the
    /// services that activate its endpoints, track their connections and obey a successor's stop request. Without a
    /// host, <paramref name="tracker"/> and <paramref name="stopRequests"/> are null: the factory's own are used.
    /// </summary>
    internal ReusePortSocketTransportFactory(
        IOptions<ReusePortSocketTransportOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        ILoggerFactory loggerFactory,
        ListenerActivation activation,
        ReusePortMetrics metrics,
        ConnectionTracker? tracker,
        IStopRequestHandler? stopRequests)
    {
        ArgumentNullException.ThrowIfNull(socketOptions);
        ArgumentNullException.ThrowIfNull(loggerFactory);

        _options = options.Value;
        _socketOptions = socketOptions.Value;
        _stock = new SocketTransportFactory(socketOptions, loggerFactory);
        _logger = loggerFactory.CreateLogger(ReusePortLog.CategoryName);
        _activation = activation;
        _context = new ListenerContext
        {
            Options = _options,
            SocketOptions = _socketOptions,

            // Connection-level messages keep the category of Kestrel's own transport, so existing log filters apply.
            ConnectionLogger = loggerFactory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"),
            Logger = _logger,
            Metrics = metrics,
            Tracker = tracker ?? new ConnectionTracker(metrics),
            StopRequests = stopRequests ?? new ApplicationStopper(_logger, lifetime: null),
            HandedOver = activation.HandedOver,
        };
    }

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
            deferred = _activation.Add(listener);
        }
        catch
        {
            foreach (var socket in reserved)
            {
                socket.Dispose();
            }

            throw;
        }

        if (!deferred)
        {
            using var predecessor = await listener.ActivateAsync(cancellationToken).ConfigureAwait(false);
        }

        return listener;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _rendezvous?.Dispose();
            _rendezvous = null;
        }
    }

    private static IOptions<ReusePortSocketTransportOptions> Validated(IOptions<ReusePortSocketTransportOptions> options)
    {
        // Without a host nothing else validates the options; under one, ValidateOnStart does, once.
        ArgumentNullException.ThrowIfNull(options);
        var failures = ReusePortSocketTransportOptionsValidator.GetFailures(options.Value);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ReusePortSocketTransportOptions), failures);
        }

        return options;
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
