// sample/WebApp without UseReusePortSockets(): Kestrel's stock sockets transport, one listening socket per endpoint.
// Keep the endpoints identical to sample/WebApp so that benchmark/load/compare.sh compares transports only.
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

var builder = WebApplication.CreateBuilder(args);

// The same Kestrel socket options as sample/WebApp, so that a tuning can be tried on both: --SocketTransport:IOQueueCount=0.
builder.Services.Configure<SocketTransportOptions>(builder.Configuration.GetSection("SocketTransport"));

var app = builder.Build();

app.MapGet("/", () => $"Hello from pid {Environment.ProcessId}\n");
app.MapGet("/healthz", () => "ok\n");

app.Run();
