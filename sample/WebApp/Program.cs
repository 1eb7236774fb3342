using Kestrel.ReusePort;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

var builder = WebApplication.CreateBuilder(args);

// The one line: every IP endpoint gets one SO_REUSEPORT socket per core, shareable with other instances of this app.
builder.WebHost.UseReusePortSockets();

// Options can also come from configuration, e.g. --ReusePort:ListenerCount=4 or ReusePort__DrainTimeout=00:00:10.
builder.Services.Configure<ReusePortSocketTransportOptions>(builder.Configuration.GetSection("ReusePort"));

// Kestrel's own socket options (IOQueueCount, Backlog, NoDelay, ...) apply to the connections of both transports.
builder.Services.Configure<SocketTransportOptions>(builder.Configuration.GetSection("SocketTransport"));

var app = builder.Build();

app.MapGet("/", () => $"Hello from pid {Environment.ProcessId}\n");
app.MapGet("/healthz", () => "ok\n");

app.Run();
