using System;
using System.Collections.Generic;
using Kestrel.ReusePort.Internal.Readiness;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// <see cref="IHealthChecksBuilder"/> extension methods for the readiness of an instance behind a load balancer.
/// </summary>
public static class ReusePortHealthChecksBuilderExtensions
{
    /// <summary>The name of the check that <see cref="AddReusePortReadiness"/> adds unless told otherwise.</summary>
    public const string DefaultName = "reuseport-readiness";

    /// <summary>The tag that <see cref="AddReusePortReadiness"/> gives the check unless told otherwise, to map it apart from liveness checks.</summary>
    public const string ReadyTag = "ready";

    /// <summary>
    /// Adds a readiness check that is healthy while the instance serves, and unhealthy from the moment it is told to
    /// stop (SIGTERM, <c>IHostApplicationLifetime.StopApplication</c>, or a successor's request), so that a load balancer
    /// that probes it stops sending it connections while it still accepts them (see
    /// <c>ReusePortSocketTransportOptions.RemovalDelay</c>).
    /// </summary>
    /// <remarks>
    /// Map it where the balancer's readiness probe looks, apart from liveness checks, which must stay healthy while the
    /// instance drains: <c>app.MapHealthChecks("/ready", new() { Predicate = c => c.Tags.Contains("ready") })</c>.
    /// </remarks>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name; <see cref="DefaultName"/> if null.</param>
    /// <param name="failureStatus">What the check reports once stopping; <see cref="HealthStatus.Unhealthy"/> if null.</param>
    /// <param name="tags">The check's tags; <see cref="ReadyTag"/> alone if null.</param>
    /// <returns>The health checks builder.</returns>
    public static IHealthChecksBuilder AddReusePortReadiness(
        this IHealthChecksBuilder builder,
        string? name = null,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);

        return builder.Add(new HealthCheckRegistration(
            name ?? DefaultName,
            static services => new ReadinessHealthCheck(services.GetRequiredService<IHostApplicationLifetime>()),
            failureStatus ?? HealthStatus.Unhealthy,
            tags ?? [ReadyTag]));
    }
}
