using System;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal.Configuration;

/// <summary>
/// Binds the <c>ReusePort</c> section of the host's configuration (appsettings.json, <c>ReusePort__Key</c> environment
/// variables, <c>--ReusePort:Key=value</c> arguments) to <see cref="ReusePortSocketTransportOptions"/>, with code that
/// the configuration binder's source generator writes, so that it stays trim- and NativeAOT-safe.
/// </summary>
/// <remarks>
/// Registered ahead of every other configuration of the options, so that options set in code override the
/// configuration whatever the order of the calls, as with Kestrel. A value that does not convert stops the start like
/// an out-of-range one: an <see cref="OptionsValidationException"/> that names the key and what it allows.
/// </remarks>
internal sealed class ReusePortConfigureOptions(IConfigurationSection section) : IConfigureOptions<ReusePortSocketTransportOptions>
{
    public void Configure(ReusePortSocketTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            section.Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ReusePortSocketTransportOptions), [Describe(e)]);
        }
    }

    private string Describe(InvalidOperationException e)
    {
        // The binder names the path of the value it could not convert; the key's range comes from here.
        foreach (var (key, allowed) in ReusePortConfigurationKeys.Allowed)
        {
            var path = ConfigurationPath.Combine(section.Path, key);
            if (e.Message.Contains($"'{path}'", StringComparison.OrdinalIgnoreCase))
            {
                return $"Configuration key {path} must be {allowed}, but was '{section[key]}'.";
            }
        }

        return $"The configuration section {section.Path} does not bind to {nameof(ReusePortSocketTransportOptions)}: {e.Message}";
    }
}
