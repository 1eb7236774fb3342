using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Internal.Handoff.Client;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Readiness;
using Kestrel.ReusePort.Internal.Warmup;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal.Hosting;

/// <summary>
/// Ties the transport to the host's lifecycle. Starting: endpoints bound by Kestrel wait; once every hosted service
/// has started (<see cref="StartedAsync"/>, before ApplicationStarted fires), they warm up, then take the port's
/// sockets and accept, then systemd hears READY=1, then (if asked) the predecessor is told to go. Stopping: systemd
/// hears STOPPING=1 and the transport drains, before Kestrel's own shutdown.
/// </summary>
internal sealed class ReusePortHostLifecycle(
    ListenerActivation activation,
    TransportDrain drain,
    SystemdNotifier notifier,
    ReusePortMetrics metrics,
    IOptions<ReusePortSocketTransportOptions> options,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggerFactory,
    IServiceProvider services) : IHostedLifecycleService
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(ReusePortLog.CategoryName);

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        activation.DeferActivation();

        // On SIGTERM ApplicationStopping fires before the host stops its services; on host.StopAsync() it comes after
        // StoppingAsync. The service manager hears STOPPING=1 at the first of the two.
        lifetime.ApplicationStopping.Register(static state => ((ReusePortHostLifecycle)state!).NotifyStopping(), this);
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        var pending = activation.PendingListeners();
        List<IPEndPoint> failed = [];
        if (options.Value.Warmup.Enabled && pending.Count > 0)
        {
            var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            failed = await WarmupRunner.RunAsync(pending, addresses, options.Value.Warmup, _logger, metrics, cancellationToken).ConfigureAwait(false);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            // The host is stopping (or its start timed out) before this instance took any traffic: take none.
            return;
        }

        // A release whose warm-up failed does not replace a running instance: this throws, and the start fails.
        WarmupFailurePolicy.Apply(failed, pending.Select(l => (IPEndPoint)l.EndPoint), options.Value.Warmup, _logger, notifier);

        var predecessors = await activation.ActivateAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            notifier.Ready(ReadyStatus(pending, predecessors));
            if (options.Value.StopPredecessor)
            {
                await PredecessorStop.RequestAsync(predecessors, activation.StartedAt, _logger, cancellationToken).ConfigureAwait(false);
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
        await drain.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        drain.ReportShutdown();
        return Task.CompletedTask;
    }

    private void NotifyStopping() => notifier.Stopping("Stopping: no new connection is accepted; open connections are drained");

    private static string ReadyStatus(List<ReusePortConnectionListener> listeners, List<Predecessor> predecessors)
    {
        var endpoints = string.Join(", ", listeners.Select(l => l.EndPoint));
        var from = predecessors.Count == 0
            ? "its own sockets"
            : "sockets taken over from process " + string.Join(", ", predecessors.Select(p => p.ProcessId.ToString(CultureInfo.InvariantCulture)).Distinct());
        return listeners.Count == 0 ? "Serving" : $"Serving {endpoints} with {from}";
    }
}
