using System.Net.WebSockets;
using System.Text;
using Kestrel.ReusePort;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

var builder = WebApplication.CreateBuilder(args);

// The one line: every IP endpoint gets one SO_REUSEPORT socket per core, shareable with other instances of this app.
// Its options come from the ReusePort section of the configuration, e.g. --ReusePort:ListenerCount=4 or
// ReusePort__StopPredecessor=true.
builder.WebHost.UseReusePortSockets();

// Kestrel's own socket options (IOQueueCount, Backlog, NoDelay, ...) apply to the connections of both transports.
builder.Services.Configure<SocketTransportOptions>(builder.Configuration.GetSection("SocketTransport"));

// Kestrel's limits, which WebApplication does not read from configuration by itself, e.g.
// --Kestrel:Limits:KeepAliveTimeout=00:01:00: a draining instance keeps an idle keep-alive connection that long too.
builder.WebHost.ConfigureKestrel(kestrel => builder.Configuration.GetSection("Kestrel:Limits").Bind(kestrel.Limits));

// Readiness for load balancers: unhealthy from SIGTERM on, while ReusePort:RemovalDelay keeps the instance accepting.
builder.Services.AddHealthChecks().AddReusePortReadiness();

// Off by default: --Telemetry:Prometheus=true serves /metrics, --Telemetry:Otlp:Endpoint=URL pushes over OTLP (Telemetry.cs).
var telemetry = Telemetry.IsEnabled(builder.Configuration);
if (telemetry)
{
    builder.AddTelemetry();
}

var app = builder.Build();
if (telemetry)
{
    app.MapTelemetry();
}

// Fault injection, for the tests and scripts that play a broken release: WEBAPP_FAULT=500 answers every request with
// 500, =hang never answers, =crash kills the process at its first request. Unset, the app is healthy.
if (Environment.GetEnvironmentVariable("WEBAPP_FAULT") is { Length: > 0 } fault)
{
    if (fault is not ("500" or "hang" or "crash"))
    {
        throw new InvalidOperationException($"WEBAPP_FAULT must be 500, hang or crash, but was '{fault}'.");
    }

    app.Use(async (HttpContext context, RequestDelegate _) =>
    {
        switch (fault)
        {
            case "500":
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                return;
            case "hang":
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
                return;
            default:
                Environment.FailFast("WEBAPP_FAULT=crash: the first request kills the process");
                return;
        }
    });
}

app.MapGet("/", () => $"Hello from pid {Environment.ProcessId}\n");
app.MapGet("/healthz", () => "ok\n");
app.MapHealthChecks("/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReusePortHealthChecksBuilderExtensions.ReadyTag) });

// A slow request: a deploy lets it finish on the old instance, within the drain's bound.
app.MapGet("/delay/{milliseconds:int}", async (int milliseconds, CancellationToken aborted) =>
{
    await Task.Delay(milliseconds, aborted);
    return $"Hello from pid {Environment.ProcessId} after {milliseconds} ms\n";
});

// A long-lived request ends gracefully when its instance drains: the WebSocket closes with 1012 (Service Restart),
// and the client's reconnection reaches the new instance, since the draining one no longer accepts.
app.UseWebSockets();
app.Map("/ws", async (HttpContext context, IReusePortLifetime lifetime) =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest("WebSocket only\n");
    }

    using var socket = await context.WebSockets.AcceptWebSocketAsync();
    await socket.SendAsync(Encoding.UTF8.GetBytes($"Hello from pid {Environment.ProcessId}"), WebSocketMessageType.Text, true, context.RequestAborted);

    // A pending receive must not be cancelled (that aborts the socket): the close frame is sent beside it instead.
    var draining = new TaskCompletionSource();
    using var registration = lifetime.Draining.Register(() => draining.TrySetResult());
    var buffer = new byte[4096];
    var receiving = socket.ReceiveAsync(buffer, context.RequestAborted);
    while (true)
    {
        if (await Task.WhenAny(receiving, draining.Task) == draining.Task)
        {
            await socket.CloseOutputAsync((WebSocketCloseStatus)1012, "Service Restart", context.RequestAborted);
            draining = new TaskCompletionSource();
            continue;
        }

        // Echo until the client closes (or answers this instance's close).
        var message = await receiving;
        if (message.MessageType == WebSocketMessageType.Close)
        {
            if (socket.State == WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, context.RequestAborted);
            }

            return Results.Empty;
        }

        if (socket.State == WebSocketState.Open)
        {
            await socket.SendAsync(buffer.AsMemory(0, message.Count), message.MessageType, message.EndOfMessage, context.RequestAborted);
        }

        receiving = socket.ReceiveAsync(buffer, context.RequestAborted);
    }
});

app.Run();
