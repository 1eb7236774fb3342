using System;
using System.Collections.Generic;
using System.Globalization;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Rejects options that would only fail later, at bind or at shutdown, with a message naming the option and its range.
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
                $"{prefix}.{nameof(options.ListenerCount)} must be between 1 and {ReusePortSocketTransportOptions.MaxListenerCount}, but was {options.ListenerCount}."));
        }

        if (!Enum.IsDefined(options.UnsupportedPlatformBehavior))
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.UnsupportedPlatformBehavior)} must be {nameof(UnsupportedPlatformBehavior.UseStockSockets)} or {nameof(UnsupportedPlatformBehavior.Throw)}, but was {(int)options.UnsupportedPlatformBehavior}."));
        }

        if (options.HandoffTimeout <= TimeSpan.Zero || options.HandoffTimeout > ReusePortSocketTransportOptions.MaxHandoffTimeout)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.HandoffTimeout)} must be more than 00:00:00 and at most {ReusePortSocketTransportOptions.MaxHandoffTimeout}, but was {options.HandoffTimeout}."));
        }

        if (options.DrainTimeout < TimeSpan.Zero || options.DrainTimeout > ReusePortSocketTransportOptions.MaxDrainTimeout)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.DrainTimeout)} must be between 00:00:00 and {ReusePortSocketTransportOptions.MaxDrainTimeout}, but was {options.DrainTimeout}."));
        }

        if (options.DeferAccept < TimeSpan.Zero || options.DeferAccept > ReusePortSocketTransportOptions.MaxDeferAccept)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.DeferAccept)} must be between 00:00:00 and {ReusePortSocketTransportOptions.MaxDeferAccept}, but was {options.DeferAccept}."));
        }

        if (options.FastOpenQueueLength is < 0 or > ReusePortSocketTransportOptions.MaxFastOpenQueueLength)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix}.{nameof(options.FastOpenQueueLength)} must be between 0 and {ReusePortSocketTransportOptions.MaxFastOpenQueueLength}, but was {options.FastOpenQueueLength}."));
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
