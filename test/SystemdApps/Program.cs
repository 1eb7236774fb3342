var builder = WebApplication.CreateBuilder(args);
builder.Host.UseSystemd();
builder.WebHost.UseReusePortSockets();

var app = builder.Build();
app.MapGet("/", () => $"Hello from pid {Environment.ProcessId}\n");
app.MapGet("/healthz", () => "ok\n");
app.Run();
