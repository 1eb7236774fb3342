using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// Invalid options keep the app from starting with a message naming the option and its range, and bind nothing.
/// </summary>
/// <remarks>
/// With WebApplication the error comes from <c>builder.Build()</c> already: WebApplication's constructor resolves
/// IServer, Kestrel resolves the transport factory, and the factory reads (so validates) the options. With the generic
/// host it comes from StartAsync (ValidateOnStart). Either way the app never listens, so the tests build and start in one
/// step and only require that one of the two throws.
/// </remarks>
public class OptionsValidationTests
{
    public static TheoryData<string, string, string[]> InvalidOptions => new()
    {
        { "ListenerCount", "ListenerCount=0", ["ReusePortSocketTransportOptions.ListenerCount", "between 1 and 1024", "but was 0"] },
        { "ListenerCount", "ListenerCount=2000", ["ReusePortSocketTransportOptions.ListenerCount", "between 1 and 1024", "but was 2000"] },
        { "HandoffTimeout", "HandoffTimeout=0", ["ReusePortSocketTransportOptions.HandoffTimeout", "more than 00:00:00 and at most 00:05:00", "but was 00:00:00"] },
        { "HandoffTimeout", "HandoffTimeout=6min", ["ReusePortSocketTransportOptions.HandoffTimeout", "more than 00:00:00 and at most 00:05:00", "but was 00:06:00"] },
        { "DrainTimeout", "DrainTimeout=-1s", ["ReusePortSocketTransportOptions.DrainTimeout", "between 00:00:00 and 01:00:00", "but was -00:00:01"] },
        { "DrainTimeout", "DrainTimeout=2h", ["ReusePortSocketTransportOptions.DrainTimeout", "between 00:00:00 and 01:00:00", "but was 02:00:00"] },
        { "DeferAccept", "DeferAccept=-1s", ["ReusePortSocketTransportOptions.DeferAccept", "between 00:00:00 and 00:10:00", "but was -00:00:01"] },
        { "FastOpenQueueLength", "FastOpenQueueLength=70000", ["ReusePortSocketTransportOptions.FastOpenQueueLength", "between 0 and 65535", "but was 70000"] },
        { "UnsupportedPlatformBehavior", "UnsupportedPlatformBehavior=7", ["ReusePortSocketTransportOptions.UnsupportedPlatformBehavior", "UseStockSockets or Throw", "but was 7"] },
        { "RendezvousDirectory", "RendezvousDirectory=relative", ["ReusePortSocketTransportOptions.RendezvousDirectory must be an absolute path", "but was 'run/app'"] },
        { "AbstractRendezvous", "AbstractRendezvous+RendezvousDirectory", ["ReusePortSocketTransportOptions.AbstractRendezvous and ReusePortSocketTransportOptions.RendezvousDirectory cannot both be set"] },
        { "Warmup.Requests", "Warmup.Requests=0", ["ReusePortSocketTransportOptions.Warmup.Requests", "between 1 and 100", "but was 0"] },
        { "Warmup.Timeout", "Warmup.Timeout=0", ["ReusePortSocketTransportOptions.Warmup.Timeout", "more than 00:00:00 and at most 00:05:00", "but was 00:00:00"] },
        { "Warmup.Paths", "Warmup.Paths=healthz", ["ReusePortSocketTransportOptions.Warmup.Paths", "start with '/'", "but has 'healthz'"] },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public async Task InvalidOptionFailsAtStart(string option, string setting, string[] messageParts)
    {
        var port = PortAllocator.GetFreePort();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o => Apply(o, setting),
        }));

        Assert.Equal(typeof(ReusePortSocketTransportOptions), error.OptionsType);
        var failure = Assert.Single(error.Failures);
        Assert.Contains(option, failure, StringComparison.Ordinal);
        foreach (var part in messageParts)
        {
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
        }

        Assert.Empty(ListeningSockets.OnPort(port));
    }

    [Fact]
    public async Task SeveralInvalidOptionsAreAllReported()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureReusePort = o =>
            {
                o.ListenerCount = -1;
                o.DrainTimeout = TimeSpan.FromSeconds(-1);
            },
        }));
        Assert.Equal(2, error.Failures.Count());
        Assert.Contains("ListenerCount", error.Message, StringComparison.Ordinal);
        Assert.Contains("DrainTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidOptionFailsAtGenericHostStart()
    {
        var port = PortAllocator.GetFreePort();
        using var host = new HostBuilder()
            .ConfigureWebHost(web => web
                .UseKestrel()
                .UseReusePortSockets(o => o.ListenerCount = 0)
                .UseUrls($"http://127.0.0.1:{port}")
                .Configure(_ => { }))
            .Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("ReusePortSocketTransportOptions.ListenerCount must be between 1 and 1024, but was 0.", error.Message, StringComparison.Ordinal);
        Assert.Empty(ListeningSockets.OnPort(port));
    }

    [Fact]
    public async Task NegativeBacklogFailsAtBind()
    {
        var port = PortAllocator.GetFreePort();
        await using var server = InProcessServer.Create(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureBuilder = b => b.WebHost.UseSockets(s => s.Backlog = -1),
        });

        var error = await Assert.ThrowsAnyAsync<Exception>(server.StartAsync);

        var validation = Assert.IsType<OptionsValidationException>(Flatten(error).FirstOrDefault(e => e is OptionsValidationException), exactMatch: true);
        Assert.Contains("SocketTransportOptions.Backlog", validation.Message, StringComparison.Ordinal);
        Assert.Contains("but was -1", validation.Message, StringComparison.Ordinal);
        Assert.Empty(ListeningSockets.OnPort(port));
    }

    private static void Apply(ReusePortSocketTransportOptions options, string setting)
    {
        switch (setting)
        {
            case "ListenerCount=0": options.ListenerCount = 0; break;
            case "ListenerCount=2000": options.ListenerCount = 2000; break;
            case "HandoffTimeout=0": options.HandoffTimeout = TimeSpan.Zero; break;
            case "HandoffTimeout=6min": options.HandoffTimeout = TimeSpan.FromMinutes(6); break;
            case "DrainTimeout=-1s": options.DrainTimeout = TimeSpan.FromSeconds(-1); break;
            case "DrainTimeout=2h": options.DrainTimeout = TimeSpan.FromHours(2); break;
            case "DeferAccept=-1s": options.DeferAccept = TimeSpan.FromSeconds(-1); break;
            case "FastOpenQueueLength=70000": options.FastOpenQueueLength = 70000; break;
            case "UnsupportedPlatformBehavior=7": options.UnsupportedPlatformBehavior = (UnsupportedPlatformBehavior)7; break;
            case "RendezvousDirectory=relative": options.RendezvousDirectory = "run/app"; break;
            case "AbstractRendezvous+RendezvousDirectory": options.AbstractRendezvous = true; options.RendezvousDirectory = "/run/app"; break;
            case "Warmup.Requests=0": options.Warmup.Requests = 0; break;
            case "Warmup.Timeout=0": options.Warmup.Timeout = TimeSpan.Zero; break;
            case "Warmup.Paths=healthz": options.Warmup.Paths.Add("healthz"); break;
            default: throw new ArgumentOutOfRangeException(nameof(setting), setting, null);
        }
    }

    private static IEnumerable<Exception> Flatten(Exception? error)
    {
        for (; error is not null; error = error.InnerException)
        {
            yield return error;
            if (error is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Flatten))
                {
                    yield return inner;
                }
            }
        }
    }
}
