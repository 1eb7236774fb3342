using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Kestrel.ReusePort.Internal.Readiness;

/// <summary>
/// Reports the instance as not ready from the moment it is told to stop (SIGTERM, <c>StopApplication</c>, or a
/// successor's request), so that a load balancer that probes it drops it before it stops accepting.
/// </summary>
/// <remarks>
/// Before the instance accepts from the port, a probe cannot reach it at all (the sockets do not listen yet, so it is
/// refused), which balancers already count as not ready: nothing to report for that phase.
/// </remarks>
internal sealed class ReadinessHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    private static readonly Task<HealthCheckResult> s_ready = Task.FromResult(HealthCheckResult.Healthy("Accepting connections."));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        lifetime.ApplicationStopping.IsCancellationRequested
            ? Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, "Stopping: take this instance out of rotation."))
            : s_ready;
}
