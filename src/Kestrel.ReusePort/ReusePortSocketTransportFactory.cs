using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
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
public sealed class ReusePortSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private static readonly TimeSpan s_drainPollInterval = TimeSpan.FromMilliseconds(20);

    private readonly ReusePortSocketTransportOptions _options;
    private readonly SocketTransportOptions _socketOptions;
    private readonly SocketTransportFactory _stock;
    private readonly ILogger _logger;
    private readonly ILogger _connectionLogger;
    private readonly ReusePortMetrics _metrics;
    private readonly ConnectionTracker? _tracker;
    private readonly List<ReusePortConnectionListener> _listeners = [];
    private int _migrateRequestLogged;
    private volatile bool _draining;

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

        // Connection-level messages keep the category of Kestrel's own transport, so existing log filters apply.
        _connectionLogger = loggerFactory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets");
        _metrics = new ReusePortMetrics(meterFactory);
        _tracker = _options.DrainTimeout > TimeSpan.Zero ? new ConnectionTracker() : null;
    }

    /// <summary>Whether a stopping host has begun draining this transport.</summary>
    internal bool IsDraining => _draining;

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

        // Port 0 asks for a new port, which no running instance can have.
        var handoff = _options.SocketHandoff && ipEndPoint.Port != 0 && NativeMethods.IsSupported;
        var sockets = handoff
            ? await HandoffClient.TryTakeOverAsync(ipEndPoint, _options.HandoffTimeout, _logger, _metrics, cancellationToken).ConfigureAwait(false)
            : [];
        var inherited = sockets.Count;
        try
        {
            // Sockets of an older instance are listening already; listening again only brings their backlog in line.
            foreach (var socket in sockets)
            {
                socket.Listen(_socketOptions.Backlog);
            }

            ListenSocketBinder.BindAndListen(ipEndPoint, _options.ListenerCount - inherited, _socketOptions.Backlog, sockets);
            foreach (var socket in sockets)
            {
                ListenSocketBinder.ApplyTuning(socket, _options);
            }
        }
        catch
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            throw;
        }

        var boundEndPoint = (IPEndPoint)sockets[0].LocalEndPoint!;
        var rendezvous = handoff ? new HandoffRendezvous(boundEndPoint, sockets, _logger, _metrics) : null;
        var listener = new ReusePortConnectionListener(
            boundEndPoint,
            sockets,
            new SocketConnectionContextFactory(ConnectionFactoryOptions.From(_socketOptions), _connectionLogger),
            _socketOptions.NoDelay,
            _tracker,
            rendezvous,
            _metrics,
            _logger);

        lock (_listeners)
        {
            _listeners.Add(listener);
        }

        listener.Start();
        ReusePortLog.Listening(_logger, boundEndPoint, sockets.Count, inherited);
        return listener;
    }

    /// <summary>
    /// Stops accepting on every endpoint, then waits until the connections accepted so far are closed or
    /// <paramref name="timeout"/> passes. Meanwhile HTTP/1.x responses carry <c>Connection: close</c>.
    /// </summary>
    internal async Task DrainAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        ReusePortConnectionListener[] listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners];
        }

        if (listeners.Length == 0)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var stops = new Task[listeners.Length];
        for (var i = 0; i < listeners.Length; i++)
        {
            stops[i] = listeners[i].StopAcceptingAsync();
        }

        await Task.WhenAll(stops).ConfigureAwait(false);

        // Only now: a client sent away while this instance still accepted could come straight back to it.
        _draining = true;

        var open = _tracker?.OpenConnections ?? 0;
        ReusePortLog.DrainStarted(_logger, listeners.Length, open, timeout);
        if (_tracker is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(s_drainPollInterval);
        try
        {
            while (_tracker.OpenConnections > 0 && Stopwatch.GetElapsedTime(started) < timeout && await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
            }
        }
        catch (OperationCanceledException)
        {
            // The host's shutdown timeout is up: Kestrel's own shutdown takes it from here.
        }

        ReusePortLog.DrainEnded(_logger, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, _tracker.OpenConnections);
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
