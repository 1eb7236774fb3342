using System;
using System.Collections.Generic;
using System.Globalization;
using Kestrel.ReusePort.Internal.Configuration;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Rejects options that would only fail later, at bind or at shutdown, with a message naming the option, its range and its configuration key.
/// </summary>
internal sealed class ReusePortSocketTransportOptionsValidator : IValidateOptions<ReusePortSocketTransportOptions>
{
    public ValidateOptionsResult Validate(string? name, ReusePortSocketTransportOptions options)
    {
        var failures = GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static List<string> GetFailures(ReusePortSocketTransportOptions options)
    {
        var failures = new List<string>();
        var prefix = nameof(ReusePortSocketTransportOptions);

        if (options.ListenerCount is < 1 or > ReusePortSocketTransportOptions.MaxListenerCount)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.ListenerCount)} must be between 1 and {ReusePortSocketTransportOptions.MaxListenerCount}, but was {options.ListenerCount}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.ListenerCount)));
        }

        if (!Enum.IsDefined(options.UnsupportedPlatformBehavior))
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.UnsupportedPlatformBehavior)} must be {nameof(UnsupportedPlatformBehavior.UseStockSockets)} or {nameof(UnsupportedPlatformBehavior.Throw)}, but was {(int)options.UnsupportedPlatformBehavior}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.UnsupportedPlatformBehavior)));
        }

        if (options.HandoffTimeout <= TimeSpan.Zero || options.HandoffTimeout > ReusePortSocketTransportOptions.MaxHandoffTimeout)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.HandoffTimeout)} must be more than 00:00:00 and at most {ReusePortSocketTransportOptions.MaxHandoffTimeout}, but was {options.HandoffTimeout}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.HandoffTimeout)));
        }

        if (options.DrainTimeout is { } drain && (drain < TimeSpan.Zero || drain > ReusePortSocketTransportOptions.MaxDrainTimeout))
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.DrainTimeout)} must be between 00:00:00 and {ReusePortSocketTransportOptions.MaxDrainTimeout} (or unset, for the host's shutdown timeout), but was {drain}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.DrainTimeout)));
        }

        if (options.RemovalDelay < TimeSpan.Zero || options.RemovalDelay > ReusePortSocketTransportOptions.MaxRemovalDelay)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.RemovalDelay)} must be between 00:00:00 and {ReusePortSocketTransportOptions.MaxRemovalDelay}, but was {options.RemovalDelay}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.RemovalDelay)));
        }

        if (options.AbstractRendezvous && !string.IsNullOrEmpty(options.RendezvousDirectory))
        {
            failures.Add($"{prefix}.{nameof(options.AbstractRendezvous)} and {prefix}.{nameof(options.RendezvousDirectory)} cannot both be set: the instances meet either on an abstract name or in a directory." +
                ReusePortConfigurationKeys.KeyOf(nameof(options.AbstractRendezvous)) + ReusePortConfigurationKeys.KeyOf(nameof(options.RendezvousDirectory)));
        }

        if (options.RendezvousDirectory is { Length: > 0 } directory && !System.IO.Path.IsPathRooted(directory))
        {
            failures.Add($"{prefix}.{nameof(options.RendezvousDirectory)} must be an absolute path, but was '{directory}'." + ReusePortConfigurationKeys.KeyOf(nameof(options.RendezvousDirectory)));
        }

        var warmup = options.Warmup;
        var warmupPrefix = $"{prefix}.{nameof(options.Warmup)}";
        if (warmup.Requests is < 1 or > ReusePortWarmupOptions.MaxRequests)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{warmupPrefix}.{nameof(warmup.Requests)} must be between 1 and {ReusePortWarmupOptions.MaxRequests}, but was {warmup.Requests}.") + ReusePortConfigurationKeys.KeyOf($"{nameof(options.Warmup)}.{nameof(warmup.Requests)}"));
        }

        if (warmup.Timeout <= TimeSpan.Zero || warmup.Timeout > ReusePortWarmupOptions.MaxTimeout)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{warmupPrefix}.{nameof(warmup.Timeout)} must be more than 00:00:00 and at most {ReusePortWarmupOptions.MaxTimeout}, but was {warmup.Timeout}.") + ReusePortConfigurationKeys.KeyOf($"{nameof(options.Warmup)}.{nameof(warmup.Timeout)}"));
        }

        foreach (var path in warmup.Paths)
        {
            if (string.IsNullOrEmpty(path) || path[0] != '/')
            {
                failures.Add($"{warmupPrefix}.{nameof(warmup.Paths)} must hold paths that start with '/', but has '{path}'." + ReusePortConfigurationKeys.KeyOf($"{nameof(options.Warmup)}.{nameof(warmup.Paths)}"));
            }
        }

        if (options.DeferAccept < TimeSpan.Zero || options.DeferAccept > ReusePortSocketTransportOptions.MaxDeferAccept)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.DeferAccept)} must be between 00:00:00 and {ReusePortSocketTransportOptions.MaxDeferAccept}, but was {options.DeferAccept}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.DeferAccept)));
        }

        if (options.FastOpenQueueLength is < 0 or > ReusePortSocketTransportOptions.MaxFastOpenQueueLength)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.FastOpenQueueLength)} must be between 0 and {ReusePortSocketTransportOptions.MaxFastOpenQueueLength}, but was {options.FastOpenQueueLength}.") + ReusePortConfigurationKeys.KeyOf(nameof(options.FastOpenQueueLength)));
        }

        return failures;
    }

    /// <summary>
    /// The socket transport's own options are not validated by Kestrel; a negative backlog would silently become the
    /// kernel's maximum.
    /// </summary>
    internal static void ValidateBacklog(int backlog)
    {
        if (backlog < 1)
        {
            throw new OptionsValidationException(nameof(Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions), typeof(Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions),
                [string.Create(CultureInfo.InvariantCulture, $"SocketTransportOptions.Backlog must be between 1 and {int.MaxValue}, but was {backlog}.")]);
        }
    }
}
