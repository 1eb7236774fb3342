using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// <c>UseReusePortSockets()</c> reads the <c>ReusePort</c> section of the host's configuration, like Kestrel reads its
/// <c>Kestrel</c> section: command line, environment variables, appsettings. Options set in code override it, and a bad
/// value stops the start naming its key.
/// </summary>
public class ConfigurationTests
{
    private const string WarmupUserAgent = "Kestrel.ReusePort-warmup";

    [Fact]
    public async Task CommandLineSettingsReachTheOptionsWarmupSectionIncluded()
    {
        var port = PortAllocator.GetFreePort();
        var warmups = 0;
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureBuilder = b => b.Configuration.AddCommandLine(
                ["--ReusePort:ListenerCount=3", "--ReusePort:Warmup:Paths:0=/configured", "--ReusePort:Warmup:Requests=3"]),
            ConfigureApp = app => app.MapGet("/configured", (HttpContext context) =>
            {
                if (context.Request.Headers.UserAgent.ToString().StartsWith(WarmupUserAgent, StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref warmups);
                }

                return "configured";
            }),
        });

        Assert.Equal(3, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        var options = server.App.Services.GetRequiredService<IOptions<ReusePortSocketTransportOptions>>().Value;
        Assert.Equal(["/configured"], options.Warmup.Paths);
        Assert.Equal(3, options.Warmup.Requests);

        // Three requests per protocol that the endpoint speaks without TLS.
        Assert.True(warmups >= 3 && warmups % 3 == 0, $"{warmups} warm-up requests of /configured");
    }

    [Fact]
    public async Task EnvironmentVariablesReachTheOptionsOfTheSample()
    {
        var port = PortAllocator.GetFreePort();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", environment: new Dictionary<string, string?>
        {
            ["ReusePort__ListenerCount"] = "3",
            ["ReusePort__Warmup__Enabled"] = "false",
        });
        await app.WaitUntilServingAsync(new IPEndPoint(IPAddress.Loopback, port));

        Assert.Equal(3, ListeningSockets.HeldBy(app.Pid, port).Count);

        // No warm-up ran: its outcome (event 19 warm, event 20 failed) is never logged.
        Assert.Equal(0, app.CountEvents(19) + app.CountEvents(20));
    }

    [Fact]
    public async Task OptionsSetInCodeOverrideConfigurationWhateverTheOrder()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--ReusePort:ListenerCount=3", "--ReusePort:StopPredecessor=true", "--ReusePort:Warmup:Requests=7", "--ReusePort:DeferAccept=00:00:05"],
        });

        // Before the one line, and after it: both win over the configuration.
        builder.Services.Configure<ReusePortSocketTransportOptions>(o => o.ListenerCount = 2);
        builder.WebHost.UseReusePortSockets(o => o.Warmup.Requests = 1);
        builder.Services.Configure<ReusePortSocketTransportOptions>(o => o.DeferAccept = TimeSpan.FromSeconds(1));

        await using var app = builder.Build();
        var options = app.Services.GetRequiredService<IOptions<ReusePortSocketTransportOptions>>().Value;

        Assert.Equal(2, options.ListenerCount);
        Assert.Equal(1, options.Warmup.Requests);
        Assert.Equal(TimeSpan.FromSeconds(1), options.DeferAccept);
        Assert.True(options.StopPredecessor);
    }

    public static TheoryData<string, string> BadValues => new()
    {
        { "--ReusePort:ListenerCount=abc", "ReusePort:ListenerCount" },
        { "--ReusePort:ListenerCount=0", "ReusePort:ListenerCount" },
        { "--ReusePort:SocketHandoff=maybe", "ReusePort:SocketHandoff" },
        { "--ReusePort:HandoffTimeout=00:10:00", "ReusePort:HandoffTimeout" },
        { "--ReusePort:UnsupportedPlatformBehavior=Ignore", "ReusePort:UnsupportedPlatformBehavior" },
        { "--ReusePort:Warmup:Timeout=soon", "ReusePort:Warmup:Timeout" },
        { "--ReusePort:Warmup:Requests=1000", "ReusePort:Warmup:Requests" },
        { "--ReusePort:Warmup:Paths:0=healthz", "ReusePort:Warmup:Paths" },
        { "--ReusePort:RemovalDelay=soon", "ReusePort:RemovalDelay" },
        { "--ReusePort:RemovalDelay=00:20:00", "ReusePort:RemovalDelay" },
        { "--ReusePort:Warmup:ServeOnFailure=maybe", "ReusePort:Warmup:ServeOnFailure" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public async Task ABadValueStopsTheStartNamingItsKey(string argument, string key)
    {
        var port = PortAllocator.GetFreePort();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureBuilder = b => b.Configuration.AddCommandLine([argument]),
        }));

        Assert.Equal(typeof(ReusePortSocketTransportOptions), error.OptionsType);
        Assert.Contains(key, Assert.Single(error.Failures), StringComparison.Ordinal);
        Assert.Empty(ListeningSockets.OnPort(port));
    }

    [Fact]
    public async Task TheSampleDoesNotStartWithAnUnparsableValueAndSaysWhichKey()
    {
        var port = PortAllocator.GetFreePort();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=abc"]);

        Assert.NotEqual(0, await app.WaitForExitAsync(SampleProcess.StartTimeout));
        Assert.True(app.HasOutput(l => l.Contains(nameof(OptionsValidationException), StringComparison.Ordinal)), app.Output);
        Assert.True(app.HasOutput(l => l.Contains("ReusePort:ListenerCount", StringComparison.Ordinal)), app.Output);
        Assert.Empty(ListeningSockets.OnPort(port));
    }
}
