using System;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.ReusePort;

/// <summary>
/// Options for the SO_REUSEPORT socket transport enabled by
/// <see cref="Microsoft.AspNetCore.Hosting.WebHostBuilderReusePortExtensions.UseReusePortSockets(Microsoft.AspNetCore.Hosting.IWebHostBuilder)"/>.
/// </summary>
/// <remarks>
/// Settings of the accepted connections (buffer sizes, <c>NoDelay</c>, backlog, I/O queues) stay on
/// <see cref="SocketTransportOptions"/>, exactly as with Kestrel's own sockets transport.
/// </remarks>
public sealed class ReusePortSocketTransportOptions
{
    /// <summary>The largest allowed <see cref="ListenerCount"/>.</summary>
    public const int MaxListenerCount = 1024;

    /// <summary>The longest allowed <see cref="HandoffTimeout"/>.</summary>
    public static readonly TimeSpan MaxHandoffTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The longest allowed <see cref="DeferAccept"/>.</summary>
    public static readonly TimeSpan MaxDeferAccept = TimeSpan.FromMinutes(10);

    /// <summary>The largest allowed <see cref="FastOpenQueueLength"/>.</summary>
    public const int MaxFastOpenQueueLength = 65535;

    /// <summary>The longest allowed <see cref="DrainTimeout"/>.</summary>
    public static readonly TimeSpan MaxDrainTimeout = TimeSpan.FromHours(1);

    /// <summary>
    /// The number of listening sockets, each with its own accept loop, opened for every IP endpoint.
    /// </summary>
    /// <remarks>
    /// Defaults to <see cref="Environment.ProcessorCount"/>. Allowed range: 1 to <see cref="MaxListenerCount"/>.
    /// When the sockets are taken over from a running instance (see <see cref="SocketHandoff"/>), that instance's
    /// sockets are used and only the missing ones are opened.
    /// </remarks>
    public int ListenerCount { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// What to do where the operating system cannot spread connections over several sockets of one port
    /// (anything but Linux 3.9 or later).
    /// </summary>
    /// <remarks>Defaults to <see cref="UnsupportedPlatformBehavior.UseStockSockets"/>.</remarks>
    public UnsupportedPlatformBehavior UnsupportedPlatformBehavior { get; set; } = UnsupportedPlatformBehavior.UseStockSockets;

    /// <summary>
    /// Whether a starting instance takes the listening sockets over from a running instance of the same user on the
    /// same endpoint, and offers its own sockets to the next one, so that stopping the old instance loses no
    /// connection waiting in a socket's accept queue.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="true"/>. The sockets pass over an abstract Unix domain socket named after the
    /// effective user id and the endpoint; only a peer with the same effective user id is answered or believed.
    /// When <see langword="false"/>, every instance opens its own sockets and joins the port's SO_REUSEPORT group.
    /// </remarks>
    public bool SocketHandoff { get; set; } = true;

    /// <summary>
    /// How long a starting instance waits for a running instance to hand its sockets over before it opens its own.
    /// </summary>
    /// <remarks>Defaults to 5 seconds. Allowed range: more than zero, at most <see cref="MaxHandoffTimeout"/>.</remarks>
    public TimeSpan HandoffTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a stopping instance keeps its open connections after it stopped accepting new ones. During this
    /// window every HTTP/1.x response carries <c>Connection: close</c>, so clients move to the other instances
    /// between two requests instead of racing a server-side close of an idle keep-alive connection.
    /// </summary>
    /// <remarks>
    /// Defaults to 5 seconds; the window ends early once no connection is open. Allowed range: zero (no window,
    /// Kestrel's own shutdown closes idle connections at once) to <see cref="MaxDrainTimeout"/>. The whole shutdown,
    /// this window included, stays bounded by <c>HostOptions.ShutdownTimeout</c>.
    /// </remarks>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// If more than zero, the kernel completes an accept only once the client has sent data, or this long after the
    /// handshake (<c>TCP_DEFER_ACCEPT</c>, whole seconds, rounded up), so the first read of a connection finds its request.
    /// </summary>
    /// <remarks>
    /// Defaults to zero (off): measured on connection churn it did not beat the default (see the README's Performance
    /// section). Allowed range: zero to <see cref="MaxDeferAccept"/>. A protocol in which the server speaks first would
    /// wait for it.
    /// </remarks>
    public TimeSpan DeferAccept { get; set; }

    /// <summary>
    /// If more than zero, enables TCP Fast Open on the listening sockets with this many pending Fast Open requests
    /// (<c>TCP_FASTOPEN</c>): a returning client may send its request in the SYN and save a round trip.
    /// </summary>
    /// <remarks>
    /// Defaults to zero (off). Allowed range: zero to <see cref="MaxFastOpenQueueLength"/>. The kernel also needs the
    /// server bit of <c>net.ipv4.tcp_fastopen</c> (value 2 or 3), and clients must ask for it.
    /// </remarks>
    public int FastOpenQueueLength { get; set; }
}
