using System;

namespace Kestrel.ReusePort.Internal.Readiness;

/// <summary>
/// <c>$NOTIFY_SOCKET</c> as it was when <c>UseReusePortSockets()</c> ran, before the host was built.
/// </summary>
/// <remarks>
/// Microsoft.Extensions.Hosting.Systemd 11 removes the variable from the environment as soon as its notifier is
/// created, so that child processes do not notify in the service's name; read any later, it would be gone.
/// </remarks>
internal sealed class NotifySocketAddress(string? path)
{
    public const string EnvironmentVariable = "NOTIFY_SOCKET";

    /// <summary>The path, or <c>@name</c> for an abstract socket; null when the process is not under a service manager.</summary>
    public string? Path { get; } = string.IsNullOrEmpty(path) ? null : path;

    public static NotifySocketAddress FromEnvironment() => new(Environment.GetEnvironmentVariable(EnvironmentVariable));
}
