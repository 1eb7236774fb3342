// sample/WebApp without UseReusePortSockets(): Kestrel's stock sockets transport, one listening socket per endpoint.
// Keep the endpoints identical to sample/WebApp so that benchmark/load/compare.sh compares transports only.
var builder = WebApplication.CreateBuilder(args);

var app = builder.Build();

app.MapGet("/", () => $"Hello from pid {Environment.ProcessId}\n");
app.MapGet("/healthz", () => "ok\n");

app.Run();
