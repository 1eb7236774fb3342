using System;
using System.Globalization;
using System.Threading;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// Rejects a <see cref="ReusePortSocketTransportOptions.RemovalDelay"/> that does not fit in the host's shutdown
/// timeout together with the drain: the host would cut the drain short at every removal, a failure seen only then.
/// </summary>
internal sealed class RemovalDelayValidator(IOptions<HostOptions> hostOptions) : IValidateOptions<ReusePortSocketTransportOptions>
{
    public ValidateOptionsResult Validate(string? name, ReusePortSocketTransportOptions options)
    {
        var failure = GetFailure(options, hostOptions.Value.ShutdownTimeout);
        return failure is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failure);
    }

    internal static string? GetFailure(ReusePortSocketTransportOptions options, TimeSpan shutdownTimeout)
    {
        var delay = options.RemovalDelay;
        // Out of its range (or the drain's): the other validator says so, once.
        if (delay <= TimeSpan.Zero || delay > ReusePortSocketTransportOptions.MaxRemovalDelay || options.DrainTimeout < TimeSpan.Zero ||
            options.DrainTimeout > ReusePortSocketTransportOptions.MaxDrainTimeout ||
            shutdownTimeout == Timeout.InfiniteTimeSpan)
        {
            return null;
        }

        const string prefix = nameof(ReusePortSocketTransportOptions);
        if (options.DrainTimeout is { } drain)
        {
            return delay + drain <= shutdownTimeout ? null : string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.RemovalDelay)} ({delay}) plus {prefix}.{nameof(options.DrainTimeout)} ({drain}) must fit within " +
                $"{nameof(HostOptions)}.{nameof(HostOptions.ShutdownTimeout)} ({shutdownTimeout}): shorten them or raise the shutdown timeout.");
        }

        var reserve = TransportDrain.KestrelShutdownReserve;
        return delay + reserve <= shutdownTimeout ? null : string.Create(CultureInfo.InvariantCulture,
            $"{prefix}.{nameof(options.RemovalDelay)} ({delay}) must leave at least {reserve} of {nameof(HostOptions)}.{nameof(HostOptions.ShutdownTimeout)} " +
            $"({shutdownTimeout}) for the drain and Kestrel's shutdown: shorten it or raise the shutdown timeout.");
    }
}
