// sample/WebApp without UseReusePortSockets(): Kestrel's stock sockets transport, one listening socket per endpoint.
// The same pipeline, endpoints and settings as sample/WebApp (WebSockets middleware, health checks, routes), so that
// benchmark/load/compare.sh compares transports only: what differs is the one line and what it adds to each request.
using System.Net.WebSockets;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

var builder = WebApplication.CreateBuilder(args);

// The same Kestrel socket options as sample/WebApp, so that a tuning can be tried on both: --SocketTransport:IOQueueCount=0.
builder.Services.Configure<SocketTransportOptions>(builder.Configuration.GetSection("SocketTransport"));
builder.WebHost.ConfigureKestrel(kestrel => builder.Configuration.GetSection("Kestrel:Limits").Bind(kestrel.Limits));
builder.Services.AddHealthChecks();

var app = builder.Build();

app.MapGet("/", () => $"Hello from pid {Environment.ProcessId}\n");
app.MapGet("/healthz", () => "ok\n");
app.MapHealthChecks("/ready");

app.MapGet("/delay/{milliseconds:int}", async (int milliseconds, CancellationToken aborted) =>
{
    await Task.Delay(milliseconds, aborted);
    return $"Hello from pid {Environment.ProcessId} after {milliseconds} ms\n";
});

app.UseWebSockets();
app.Map("/ws", async (HttpContext context) =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest("WebSocket only\n");
    }

    // An echo, as the sample's (which also closes with 1012 when its instance drains).
    using var socket = await context.WebSockets.AcceptWebSocketAsync();
    var buffer = new byte[4096];
    while (true)
    {
        var message = await socket.ReceiveAsync(buffer, context.RequestAborted);
        if (message.MessageType == WebSocketMessageType.Close)
        {
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, context.RequestAborted);
            return Results.Empty;
        }

        await socket.SendAsync(buffer.AsMemory(0, message.Count), message.MessageType, message.EndOfMessage, context.RequestAborted);
    }
});

app.Run();
