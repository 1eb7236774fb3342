using System.Threading;

namespace Kestrel.ReusePort;

/// <summary>
/// Tells the app where this instance stands in a rolling deploy. Resolve it from dependency injection (it is registered
/// by <c>UseReusePortSockets</c>).
/// </summary>
public interface IReusePortLifetime
{
    /// <summary>
    /// Triggered when this instance has stopped accepting connections and begins to drain (on SIGTERM, or when a new
    /// instance asked it to stop). Long-lived requests (WebSockets, server-sent events, long polls) should end
    /// gracefully then, e.g. a WebSocket closes with status 1012 (Service Restart): the client's reconnection reaches
    /// the new instance, since this one no longer accepts.
    /// </summary>
    /// <remarks>
    /// Unlike <c>IHostApplicationLifetime.ApplicationStopping</c>, which fires before the listening sockets are let go,
    /// this fires only once this instance can no longer be given a new connection. With
    /// <see cref="ReusePortSocketTransportOptions.RemovalDelay"/>, that is when the delay ends (or a successor takes the
    /// sockets over), not at SIGTERM.
    /// </remarks>
    CancellationToken Draining { get; }
}
