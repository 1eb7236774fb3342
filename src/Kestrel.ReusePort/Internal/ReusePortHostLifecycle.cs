using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Ties the transport to the host's lifecycle. Starting: endpoints bound by Kestrel wait; once every hosted service
/// has started (<see cref="StartedAsync"/>, before ApplicationStarted fires), they warm up, then take the port's
/// sockets and accept, then systemd hears READY=1, then (if asked) the predecessor is told to go. Stopping: systemd
/// hears STOPPING=1 and the transport drains, before Kestrel's own shutdown.
/// </summary>
internal sealed class ReusePortHostLifecycle(
    ReusePortSocketTransportFactory factory,
    IOptions<ReusePortSocketTransportOptions> options,
    IOptions<HostOptions> hostOptions,
    IHostApplicationLifetime lifetime,
    IServiceProvider services) : IHostedLifecycleService
{
    /// <summary>What the drain leaves Kestrel's shutdown, out of the host's, for the requests still in flight at its end.</summary>
    public static readonly TimeSpan KestrelShutdownReserve = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan s_stopRequestTimeout = TimeSpan.FromSeconds(5);

    private readonly SystemdNotifier _notifier = new(services, factory.Logger);

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        factory.DeferActivation(PredecessorAsked);

        // On SIGTERM ApplicationStopping fires before the host stops its services; on host.StopAsync() it comes after
        // StoppingAsync. The service manager hears STOPPING=1 at the first of the two.
        lifetime.ApplicationStopping.Register(static state => ((ReusePortHostLifecycle)state!).NotifyStopping(), this);
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        var pending = factory.PendingListeners();
        var warmups = pending.Where(l => l.Warmup is not null).Select(l => ((System.Net.IPEndPoint)l.EndPoint, l.Warmup!, l.EndpointTags)).ToList();
        List<System.Net.IPEndPoint> failed = [];
        if (warmups.Count > 0)
        {
            var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            failed = await WarmupRunner.RunAsync(warmups, addresses, options.Value.Warmup, factory.Logger, factory.Metrics, cancellationToken).ConfigureAwait(false);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            // The host is stopping (or its start timed out) before this instance took any traffic: take none.
            return;
        }

        // A release whose warm-up failed does not replace a running instance: this throws, and the start fails.
        WarmupFailurePolicy.Apply(failed, pending.Select(l => (System.Net.IPEndPoint)l.EndPoint), options.Value.Warmup, factory.Logger, _notifier);

        var predecessors = await factory.ActivateAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _notifier.Ready(ReadyStatus(pending, predecessors));
            if (options.Value.StopPredecessor)
            {
                await StopPredecessorsAsync(predecessors, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            foreach (var predecessor in predecessors)
            {
                predecessor.Dispose();
            }
        }
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        NotifyStopping();
        var delayed = await RemovalDelay.RunAsync(factory, options.Value.RemovalDelay, _notifier, cancellationToken).ConfigureAwait(false);
        await ConnectionDrain.RunAsync(factory, DrainTimeoutFor(delayed), factory.Lifetime, _notifier, cancellationToken).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        ConnectionDrain.ReportShutdown(factory.Tracker, factory.Logger);
        return Task.CompletedTask;
    }

    /// <summary>The drain timeout: the option, else the host's shutdown timeout less the removal delay and Kestrel's reserve.</summary>
    private TimeSpan DrainTimeoutFor(TimeSpan delayed)
    {
        if (options.Value.DrainTimeout is { } configured)
        {
            return configured;
        }

        var shutdown = hostOptions.Value.ShutdownTimeout;
        if (shutdown == Timeout.InfiniteTimeSpan)
        {
            return Timeout.InfiniteTimeSpan;
        }

        var left = shutdown - delayed;
        var drainTimeout = left - KestrelShutdownReserve;
        return drainTimeout < left / 2 ? left / 2 : drainTimeout;
    }

    private void NotifyStopping() => _notifier.Stopping("Stopping: no new connection is accepted; open connections are drained");

    private void PredecessorAsked(int processId) => lifetime.StopApplication();

    private async Task StopPredecessorsAsync(List<Predecessor> predecessors, CancellationToken cancellationToken)
    {
        // One old instance may have handed over several endpoints: it is asked once per connection, and obeys once.
        foreach (var predecessor in predecessors)
        {
            try
            {
                switch (await predecessor.RequestStopAsync(factory.StartedAt, s_stopRequestTimeout, cancellationToken).ConfigureAwait(false))
                {
                    case HandoffProtocol.StopAccepted:
                        ReusePortLog.PredecessorStopped(factory.Logger, predecessor.ProcessId);
                        break;
                    case HandoffProtocol.StopRefused:
                        ReusePortLog.PredecessorNotStopped(factory.Logger, predecessor.ProcessId,
                            "it began serving only after this instance started, so it is a new instance too, started at the same time", null);
                        break;
                    default:
                        ReusePortLog.PredecessorNotStopped(factory.Logger, predecessor.ProcessId,
                            predecessor.Version < 2 ? "it runs a release that does not know this request" : "it closed the connection without an answer", null);
                        break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                ReusePortLog.PredecessorNotStopped(factory.Logger, predecessor.ProcessId, "it did not answer in time", e);
            }
        }

        if (predecessors.Count == 0)
        {
            ReusePortLog.NoPredecessorToStop(factory.Logger);
        }
    }

    private static string ReadyStatus(List<ReusePortConnectionListener> listeners, List<Predecessor> predecessors)
    {
        var endpoints = string.Join(", ", listeners.Select(l => l.EndPoint));
        var from = predecessors.Count == 0
            ? "its own sockets"
            : "sockets taken over from process " + string.Join(", ", predecessors.Select(p => p.ProcessId.ToString(CultureInfo.InvariantCulture)).Distinct());
        return listeners.Count == 0 ? "Serving" : $"Serving {endpoints} with {from}";
    }
}
