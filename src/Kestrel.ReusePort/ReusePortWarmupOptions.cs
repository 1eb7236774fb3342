using System;
using System.Collections.Generic;

namespace Kestrel.ReusePort;

/// <summary>
/// The warm-up of a starting instance (<see cref="ReusePortSocketTransportOptions.Warmup"/>): before it accepts a
/// connection from the port's shared sockets, it sends these requests through Kestrel's real pipeline for every
/// endpoint (HTTP/1.1, and TLS and HTTP/2 where the endpoint has them), over a private loopback socket that no other
/// instance and no other client can reach.
/// </summary>
/// <remarks>
/// A fresh .NET instance spends 100-200 ms on its first request (tier-0 JIT of the HTTP path, the route table, the
/// endpoint delegates); every client it accepted meanwhile waits for it. Warming up moves that cost before the
/// instance takes traffic, and before <c>ApplicationStarted</c>, systemd's READY=1 and the "Listening on" log line.
/// The requests are GETs: they should be safe to repeat and cheap, like a health or home page. They reach the app's
/// middleware and endpoints from a loopback address, with the user agent <c>Kestrel.ReusePort-warmup</c>.
/// </remarks>
public sealed class ReusePortWarmupOptions
{
    /// <summary>The default <see cref="Paths"/>.</summary>
    internal static readonly IReadOnlyList<string> DefaultPaths = ["/"];

    /// <summary>The largest allowed <see cref="Requests"/>.</summary>
    internal const int MaxRequests = 100;

    /// <summary>The longest allowed <see cref="Timeout"/>.</summary>
    internal static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Whether to warm up. Defaults to <see langword="true"/>.</summary>
    /// <remarks>
    /// Without warm-up the instance still accepts only once the application has started (after every hosted service's
    /// StartAsync), and its first clients pay for the cold pipeline.
    /// </remarks>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The paths to GET, each starting with <c>/</c>. Empty (the default) means <see cref="DefaultPaths"/>: <c>/</c>,
    /// which builds the route table and every endpoint's request delegate whatever it answers, 404 included.
    /// </summary>
    /// <remarks>Add the endpoints whose first call is costly (a JSON type's first serialization, a view's compilation).</remarks>
    public IList<string> Paths { get; } = [];

    /// <summary>How many times each path is requested, per endpoint and protocol. Defaults to 2. Allowed range: 1 to <see cref="MaxRequests"/>.</summary>
    public int Requests { get; set; } = 2;

    /// <summary>
    /// The longest the whole warm-up may take; past it the instance logs which request did not finish, and the warm-up
    /// has failed (see <see cref="ServeOnFailure"/>). Defaults to 10 seconds. Allowed range: more than zero, at most
    /// <see cref="MaxTimeout"/>.
    /// </summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The host name the requests carry (Host header and TLS server name). Defaults to <see langword="null"/>:
    /// <c>localhost</c> for loopback and wildcard endpoints, else the endpoint's address. Set it when host filtering,
    /// host-based routing or the certificate selection needs a real name.
    /// </summary>
    public string? Host { get; set; }

    /// <summary>
    /// Whether an instance whose warm-up failed takes a running instance's port all the same. Defaults to
    /// <see langword="false"/>: a release that answers a warm-up request with a 5xx, does not answer, or outlasts
    /// <see cref="Timeout"/> (on any endpoint, over any protocol it offers) while another instance serves one of its
    /// endpoints does not take the port; it logs why, tells systemd (<c>STATUS=</c>, never READY=1), and its start
    /// fails with <see cref="ReusePortWarmupFailedException"/>, so that the process exits non-zero and the running
    /// instance goes on serving. A first start, with no running instance to replace, serves anyway.
    /// </summary>
    /// <remarks>
    /// Set it when a warm-up path may legitimately fail (it reaches a dependency that is down while the release is
    /// fine). A 404 is not a failure: the default path, <c>/</c>, may have no endpoint.
    /// </remarks>
    public bool ServeOnFailure { get; set; }
}
