using System;
using System.Globalization;
using System.IO;
using System.Net;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Posix;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Rendezvous;

/// <summary>
/// Where the instances of this user meet, decided once per process from the options and the environment.
/// </summary>
/// <remarks>
/// In order: <c>AbstractRendezvous</c> (opt-in); <c>RendezvousDirectory</c>; a <c>kestrel-reuseport</c> directory in
/// systemd's <c>$RUNTIME_DIRECTORY</c>, in the login session's <c>$XDG_RUNTIME_DIR</c>, or in <c>/run</c> for root;
/// otherwise random abstract names found through /proc. A configured directory that is not private to this user fails
/// the start; a directory from the environment that is not is logged and turns the handoff off. Neither is ever
/// replaced by another place, since instances that look in different places would not find each other.
/// </remarks>
internal sealed class RendezvousLocation : IDisposable
{
    public const string SubdirectoryName = "kestrel-reuseport";

    private readonly PrivateDirectory? _directory;
    private readonly bool _abstract;
    private readonly uint _userId = NativeMethods.GetEffectiveUserId();

    private RendezvousLocation(PrivateDirectory? directory, bool isAbstract, string description)
    {
        _directory = directory;
        _abstract = isAbstract;
        Description = description;
    }

    /// <summary>What the place is, for log messages.</summary>
    public string Description { get; }

    /// <summary>
    /// Decides where to meet; null (logged) when the environment names a place that is not private to this user.
    /// </summary>
    /// <exception cref="InvalidOperationException">The configured <c>RendezvousDirectory</c> is not private to this user.</exception>
    public static RendezvousLocation? Resolve(ReusePortSocketTransportOptions options, Func<string, string?> environment, ILogger logger)
    {
        if (options.AbstractRendezvous)
        {
            ReusePortLog.AbstractRendezvousChosen(logger);
            return new RendezvousLocation(null, isAbstract: true, "abstract Unix socket names (AbstractRendezvous)");
        }

        if (!string.IsNullOrEmpty(options.RendezvousDirectory))
        {
            var configured = PrivateDirectory.TryOpen(options.RendezvousDirectory, create: true, out var problem)
                ?? throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"{nameof(ReusePortSocketTransportOptions)}.{nameof(ReusePortSocketTransportOptions.RendezvousDirectory)} '{options.RendezvousDirectory}' cannot hold the socket handoff's rendezvous: {problem}. " +
                    $"Use a directory that only user id {NativeMethods.GetEffectiveUserId()} can write to (e.g. mode 0700), on a path no other user can change, or leave the option unset."));
            return new RendezvousLocation(configured, isAbstract: false, configured.Path);
        }

        var (source, baseDirectory) = EnvironmentDirectory(environment);
        if (baseDirectory is null)
        {
            return new RendezvousLocation(null, isAbstract: false, "random abstract names, found through /proc");
        }

        var path = Path.Join(baseDirectory, SubdirectoryName);
        var directory = PrivateDirectory.TryOpen(path, create: true, out var reason);
        if (directory is null)
        {
            ReusePortLog.RendezvousDirectoryRefused(logger, path, source, reason!);
            return null;
        }

        return new RendezvousLocation(directory, isAbstract: false, directory.Path);
    }

    /// <summary>The place of one endpoint.</summary>
    public RendezvousPlace PlaceFor(IPEndPoint endpoint) =>
        _abstract ? new AbstractRendezvousPlace(endpoint, _userId)
        : _directory is not null ? new DirectoryRendezvousPlace(_directory, endpoint)
        : new DiscoveredRendezvousPlace(endpoint);

    /// <summary>Where the first release of this library offered an endpoint's sockets, asked once during an upgrade.</summary>
    public RendezvousPlace LegacyPlaceFor(IPEndPoint endpoint) => new AbstractRendezvousPlace(endpoint, _userId, version: 1);

    public void Dispose() => _directory?.Dispose();

    /// <summary>The directory the environment gives (its <see cref="SubdirectoryName"/> is the rendezvous), and where it came from.</summary>
    internal static (string Source, string? Directory) EnvironmentDirectory(Func<string, string?> environment)
    {
        // systemd's RuntimeDirectory= may list several directories, separated by colons: the first is the service's own.
        var runtimeDirectory = environment("RUNTIME_DIRECTORY");
        if (!string.IsNullOrEmpty(runtimeDirectory))
        {
            return ("$RUNTIME_DIRECTORY", runtimeDirectory.Split(':')[0]);
        }

        var xdgRuntimeDirectory = environment("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(xdgRuntimeDirectory))
        {
            return ("$XDG_RUNTIME_DIR", xdgRuntimeDirectory);
        }

        return NativeMethods.GetEffectiveUserId() == 0 ? ("/run, for root", "/run") : ("none", null);
    }
}
