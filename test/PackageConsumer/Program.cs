var builder = WebApplication.CreateBuilder(args);
builder.WebHost.UseReusePortSockets();
var app = builder.Build();
app.MapGet("/", () => $"Hello from the package, pid {Environment.ProcessId}\n");
app.Run();
