using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// The transport without a host: the public factory binds 127.0.0.1 on a free port and accepts at once, with no
/// handoff and no drain, for tests that look at the sockets and the connections they accept.
/// </summary>
public static class DirectListener
{
    public static async Task<IConnectionListener> BindAsync(ReusePortSocketTransportOptions options)
    {
        options.SocketHandoff = false;
        options.DrainTimeout = TimeSpan.Zero;
        var factory = new ReusePortSocketTransportFactory(Options.Create(options), Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance);
        return await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
    }
}
