using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A minimal API app in the test process (<c>GET /</c>, <c>GET /healthz</c>) on Kestrel with
/// <c>UseReusePortSockets</c>, its logs kept in <see cref="Logs"/>. Build it, then <see cref="StartAsync"/>; dispose it
/// in a finally (await using), which stops it if it started.
/// </summary>
public sealed class InProcessServer : IAsyncDisposable
{
    private bool _started;
    private bool _stopped;

    private InProcessServer(WebApplication app, FakeLogCollector logs, string name)
    {
        App = app;
        Logs = logs;
        Name = name;
    }

    public WebApplication App { get; }

    public FakeLogCollector Logs { get; }

    public string Name { get; }

    /// <summary>The body prefix of <c>GET /</c>.</summary>
    public string Greeting => $"Hello from {Name} pid {Environment.ProcessId}";

    /// <summary>The app's meter factory: the scope of its <c>Kestrel.ReusePort</c> meter.</summary>
    public object MeterScope => App.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();

    /// <summary>
    /// The TCP addresses Kestrel reports once started (with the real port when port 0 was asked for); Unix socket
    /// addresses (<c>http://unix:/path</c>) are left out.
    /// </summary>
    public IReadOnlyList<Uri> Addresses =>
        [.. (App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
            .Where(a => (a.StartsWith("http://", StringComparison.Ordinal) || a.StartsWith("https://", StringComparison.Ordinal)) && !a.Contains("://unix:", StringComparison.Ordinal))
            .Select(a => new Uri(a))];

    /// <summary>The port of the first (or only) address.</summary>
    public int Port => Addresses.Count > 0 ? Addresses[0].Port : throw new InvalidOperationException("The server has no address.");

    /// <summary>The first TCP address as an endpoint to connect to.</summary>
    public IPEndPoint EndPoint => ToEndPoint(Addresses[0]);

    /// <summary>Builds the app; nothing is bound until <see cref="StartAsync"/>.</summary>
    public static InProcessServer Create(InProcessServerOptions? options = null)
    {
        options ??= new InProcessServerOptions();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Production",
        });
        var logs = new FakeLogCollector();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(new FakeLoggerProvider(logs));

        if (options.UseReusePort)
        {
            builder.WebHost.UseReusePortSockets(o =>
            {
                o.DrainTimeout = TimeSpan.Zero;
                options.ConfigureReusePort?.Invoke(o);
            });
        }

        if (options.ConfigureKestrel is { } configureKestrel)
        {
            builder.WebHost.ConfigureKestrel(configureKestrel);
        }
        else
        {
            builder.WebHost.UseUrls([.. options.Urls]);
        }

        if (options.ShutdownTimeout is { } shutdownTimeout)
        {
            builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = shutdownTimeout);
        }

        options.ConfigureBuilder?.Invoke(builder);

        var app = builder.Build();
        var greeting = $"Hello from {options.Name} pid {Environment.ProcessId}\n";
        app.MapGet("/", () => greeting);
        app.MapGet("/healthz", () => "ok\n");
        options.ConfigureApp?.Invoke(app);
        return new InProcessServer(app, logs, options.Name);
    }

    /// <summary>Builds and starts; disposes the app if starting fails.</summary>
    public static async Task<InProcessServer> StartAsync(InProcessServerOptions? options = null)
    {
        var server = Create(options);
        try
        {
            await server.StartAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public async Task StartAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await App.StartAsync(cts.Token);
        _started = true;
    }

    public async Task StopAsync()
    {
        if (!_started || _stopped)
        {
            return;
        }

        _stopped = true;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await App.StopAsync(cts.Token);
    }

    /// <summary>The server's address for <paramref name="address"/> with the port of <paramref name="uri"/>.</summary>
    public static IPEndPoint ToEndPoint(Uri uri, IPAddress? address = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return new IPEndPoint(address ?? (uri.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(uri.Host.Trim('[', ']'))), uri.Port);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            await App.DisposeAsync();
        }
    }
}
