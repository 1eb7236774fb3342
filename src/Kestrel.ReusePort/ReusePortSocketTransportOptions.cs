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
    internal const int MaxListenerCount = 1024;

    /// <summary>The longest allowed <see cref="HandoffTimeout"/>.</summary>
    internal static readonly TimeSpan MaxHandoffTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The longest allowed <see cref="DeferAccept"/>.</summary>
    internal static readonly TimeSpan MaxDeferAccept = TimeSpan.FromMinutes(10);

    /// <summary>The largest allowed <see cref="FastOpenQueueLength"/>.</summary>
    internal const int MaxFastOpenQueueLength = 65535;

    /// <summary>The longest allowed <see cref="DrainTimeout"/>.</summary>
    internal static readonly TimeSpan MaxDrainTimeout = TimeSpan.FromHours(1);

    /// <summary>The longest allowed <see cref="RemovalDelay"/>.</summary>
    internal static readonly TimeSpan MaxRemovalDelay = TimeSpan.FromMinutes(10);

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
    /// Defaults to <see langword="true"/>. The instances meet at a rendezvous that only their user can create (see
    /// <see cref="RendezvousDirectory"/>); only a peer with the same effective user id is answered or believed. When
    /// <see langword="false"/>, every instance opens its own sockets and joins the port's SO_REUSEPORT group.
    /// </remarks>
    public bool SocketHandoff { get; set; } = true;

    /// <summary>
    /// How long a starting instance waits for a running instance to hand its sockets over before it opens its own.
    /// </summary>
    /// <remarks>Defaults to 5 seconds. Allowed range: more than zero, at most <see cref="MaxHandoffTimeout"/>.</remarks>
    public TimeSpan HandoffTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The directory in which instances of this app meet to hand their sockets over: it holds one socket file and one
    /// lock file per endpoint while an instance runs.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="null"/>: a <c>kestrel-reuseport</c> directory in systemd's <c>$RUNTIME_DIRECTORY</c>,
    /// else in <c>$XDG_RUNTIME_DIR</c>, else in <c>/run</c> for root; for any other user, instances find each other's
    /// random abstract socket names through /proc instead, which needs no directory but a shared PID namespace. The
    /// directory is created with mode 0700 if missing. It must belong to this process's user and be writable by no one
    /// else, on a path that only root or this user can change; otherwise the app fails to start with the reason. Set it
    /// to a directory that all instances share when they run in different PID or mount namespaces (containers).
    /// </remarks>
    public string? RendezvousDirectory { get; set; }

    /// <summary>
    /// Whether instances meet on a fixed name in the network namespace's abstract Unix socket namespace instead of in a
    /// directory, for containers that share a network namespace but neither a PID namespace nor a volume.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="false"/>. Any local user can bind any abstract name: a process of another user that
    /// binds this one first cannot take or receive the sockets, but it turns the handoff off, and deploys then reset
    /// the connections queued on the old instance's sockets. Cannot be combined with <see cref="RendezvousDirectory"/>.
    /// </remarks>
    public bool AbstractRendezvous { get; set; }

    /// <summary>
    /// Whether a starting instance, once it is warm and accepts on the sockets it took over, asks the instance it took
    /// them from to drain and exit, so that a deploy is only "start the new version".
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="false"/>, so that instances started side by side (scale-out) keep running. The old
    /// instance stops as on SIGTERM (<c>IHostApplicationLifetime.StopApplication</c>). If the new instance fails before
    /// it is warm, the old one is never asked; if the old one does not answer within <see cref="HandoffTimeout"/>, the
    /// new one serves with sockets of its own and logs that the old one was not stopped.
    /// </remarks>
    public bool StopPredecessor { get; set; }

    /// <summary>
    /// How long a stopping instance keeps its open connections after it stopped accepting new ones. During the drain
    /// every HTTP/1.x response carries <c>Connection: close</c> and HTTP/2 connections get GOAWAY, so clients move to
    /// the other instances between two requests; an idle keep-alive connection is left open, as a running Kestrel would
    /// leave it, until its client sends a request, closes it, or Kestrel's <c>KeepAliveTimeout</c> passes.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="null"/>: <c>HostOptions.ShutdownTimeout</c> (30 seconds by default) minus 2 seconds
    /// that Kestrel's own shutdown keeps for the requests still in flight at that point, and minus the
    /// <see cref="RemovalDelay"/> that went before. The drain ends as soon as no
    /// connection is open. What is still open at its end is logged with counts and closed by Kestrel's shutdown. Allowed
    /// range: zero (no drain: Kestrel's shutdown closes idle connections at once) to <see cref="MaxDrainTimeout"/>; the
    /// host's shutdown timeout bounds it in any case.
    /// </remarks>
    public TimeSpan? DrainTimeout { get; set; }

    /// <summary>
    /// How long an instance that is told to stop while no successor holds its sockets (scale-in, a Kubernetes pod being
    /// terminated, a VM leaving a load balancer) keeps accepting new connections, so that a load balancer still sending
    /// it connections until its endpoint list catches up loses none. Meanwhile every HTTP/1.x response carries
    /// <c>Connection: close</c> and HTTP/2 connections get GOAWAY, so that clients and balancers move on; then the
    /// instance stops accepting and drains (see <see cref="DrainTimeout"/>).
    /// </summary>
    /// <remarks>
    /// Defaults to zero (off: accepting stops at once, as with Kestrel's own transports). Configuration key:
    /// <c>ReusePort:RemovalDelay</c> where the options are bound from the <c>ReusePort</c> section. An instance whose
    /// sockets a successor took over (<see cref="SocketHandoff"/>) is replaced, not removed: it stops accepting at once,
    /// also when the successor takes them during the delay. The delay counts against <c>HostOptions.ShutdownTimeout</c>:
    /// it and <see cref="DrainTimeout"/> (when set; else 2 seconds for Kestrel's own shutdown) must fit within it, or the
    /// app fails to start. Allowed range: zero to <see cref="MaxRemovalDelay"/>. Set it a little longer than the load
    /// balancer takes to drop an instance (for Kubernetes, the time until the endpoint removal reaches every node); it
    /// replaces a <c>preStop</c> sleep, which cannot tell a replaced instance from a removed one.
    /// </remarks>
    public TimeSpan RemovalDelay { get; set; }

    /// <summary>
    /// The requests a starting instance sends through its own pipeline before it accepts a connection from the port, so
    /// that the first clients it serves do not wait for the JIT, the route table and the endpoints to be built.
    /// </summary>
    public ReusePortWarmupOptions Warmup { get; } = new();

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
