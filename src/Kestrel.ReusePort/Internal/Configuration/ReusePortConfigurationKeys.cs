using System.Collections.Generic;
using System.Globalization;

namespace Kestrel.ReusePort.Internal.Configuration;

/// <summary>
/// The configuration keys of <see cref="ReusePortSocketTransportOptions"/> (the <c>ReusePort</c> section, like Kestrel's
/// <c>Kestrel</c> section) and what each allows, so that a bad value names the key an operator has to fix.
/// </summary>
internal static class ReusePortConfigurationKeys
{
    /// <summary>The section of the host's configuration that <c>UseReusePortSockets()</c> binds.</summary>
    public const string SectionName = "ReusePort";

    private const string Boolean = "true or false";

    /// <summary>Keys below the section, with what a value may be; string-valued keys cannot fail to convert.</summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> Allowed =
    [
        new("ListenerCount", string.Create(CultureInfo.InvariantCulture, $"a whole number between 1 and {ReusePortSocketTransportOptions.MaxListenerCount}")),
        new("UnsupportedPlatformBehavior", $"{nameof(UnsupportedPlatformBehavior.UseStockSockets)} or {nameof(UnsupportedPlatformBehavior.Throw)}"),
        new("SocketHandoff", Boolean),
        new("HandoffTimeout", string.Create(CultureInfo.InvariantCulture, $"a time span (hh:mm:ss) more than 00:00:00 and at most {ReusePortSocketTransportOptions.MaxHandoffTimeout}")),
        new("AbstractRendezvous", Boolean),
        new("StopPredecessor", Boolean),
        new("DrainTimeout", string.Create(CultureInfo.InvariantCulture, $"a time span (hh:mm:ss) between 00:00:00 and {ReusePortSocketTransportOptions.MaxDrainTimeout}")),
        new("DeferAccept", string.Create(CultureInfo.InvariantCulture, $"a time span (hh:mm:ss) between 00:00:00 and {ReusePortSocketTransportOptions.MaxDeferAccept}")),
        new("FastOpenQueueLength", string.Create(CultureInfo.InvariantCulture, $"a whole number between 0 and {ReusePortSocketTransportOptions.MaxFastOpenQueueLength}")),
        new("RemovalDelay", string.Create(CultureInfo.InvariantCulture, $"a time span (hh:mm:ss) between 00:00:00 and {ReusePortSocketTransportOptions.MaxRemovalDelay}")),
        new("Warmup:Enabled", Boolean),
        new("Warmup:ServeOnFailure", Boolean),
        new("Warmup:Requests", string.Create(CultureInfo.InvariantCulture, $"a whole number between 1 and {ReusePortWarmupOptions.MaxRequests}")),
        new("Warmup:Timeout", string.Create(CultureInfo.InvariantCulture, $"a time span (hh:mm:ss) more than 00:00:00 and at most {ReusePortWarmupOptions.MaxTimeout}")),
    ];

    /// <summary>
    /// The sentence a validation failure ends with: the configuration key of an option path such as
    /// <c>Warmup.Requests</c>.
    /// </summary>
    public static string KeyOf(string optionPath) => $" Configuration key: {SectionName}:{optionPath.Replace('.', ':')}.";
}
