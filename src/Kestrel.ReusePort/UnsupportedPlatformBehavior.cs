namespace Kestrel.ReusePort;

/// <summary>
/// What <see cref="ReusePortSocketTransportFactory"/> does on a platform where SO_REUSEPORT does not spread
/// connections over the sockets of a port.
/// </summary>
/// <remarks>
/// macOS and the BSDs accept SO_REUSEPORT but hand every connection to one socket (FreeBSD balances only with
/// <c>SO_REUSEPORT_LB</c>); Windows has no equivalent, and its SO_REUSEADDR lets another process steal the port.
/// </remarks>
public enum UnsupportedPlatformBehavior
{
    /// <summary>
    /// Bind every endpoint with Kestrel's stock sockets transport (one socket, no port sharing) and log a warning.
    /// The app runs as it would without the transport; a second instance on the same port fails to bind.
    /// </summary>
    UseStockSockets = 0,

    /// <summary>
    /// Fail the bind with a <see cref="System.PlatformNotSupportedException"/>, so that the app does not start
    /// where port sharing was a requirement.
    /// </summary>
    Throw = 1,
}
