using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>How to build an <see cref="InProcessServer"/>.</summary>
public sealed class InProcessServerOptions
{
    /// <summary>Answered by <c>GET /</c> as <c>Hello from {Name} pid {pid}</c>, to tell servers of one process apart.</summary>
    public string Name { get; init; } = "server";

    /// <summary>Whether to call <c>UseReusePortSockets</c>; false gives Kestrel's stock sockets transport.</summary>
    public bool UseReusePort { get; init; } = true;

    /// <summary>
    /// Configures the transport. Runs after the test defaults (DrainTimeout zero, so that stopping is immediate).
    /// </summary>
    public Action<ReusePortSocketTransportOptions>? ConfigureReusePort { get; init; }

    /// <summary>The URLs to listen on, unless <see cref="ConfigureKestrel"/> sets endpoints.</summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:0"];

    /// <summary>Kestrel endpoints (Listen, ListenUnixSocket, ...); when set, <see cref="Urls"/> is not used.</summary>
    public Action<KestrelServerOptions>? ConfigureKestrel { get; init; }

    /// <summary>Anything else, called last before Build.</summary>
    public Action<WebApplicationBuilder>? ConfigureBuilder { get; init; }

    /// <summary>More endpoints or middleware, after <c>GET /</c> and <c>GET /healthz</c>.</summary>
    public Action<WebApplication>? ConfigureApp { get; init; }

    /// <summary><c>HostOptions.ShutdownTimeout</c>, which bounds the drain; the host's default (30 s) when null.</summary>
    public TimeSpan? ShutdownTimeout { get; init; }
}
