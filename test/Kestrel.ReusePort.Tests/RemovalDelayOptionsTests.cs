using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// <see cref="ReusePortSocketTransportOptions.RemovalDelay"/> counts against <c>HostOptions.ShutdownTimeout</c>: a value
/// that cannot fit with the drain fails at start naming both settings, and the default drain bound leaves it out.
/// </summary>
public class RemovalDelayOptionsTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(-1, null, "RemovalDelay must be between 00:00:00 and 00:10:00, but was -00:00:01")]
    [InlineData(660, null, "RemovalDelay must be between 00:00:00 and 00:10:00, but was 00:11:00")]
    [InlineData(9, null, "ReusePortSocketTransportOptions.RemovalDelay (00:00:09)|HostOptions.ShutdownTimeout (00:00:10)")]
    [InlineData(5, 6, "ReusePortSocketTransportOptions.RemovalDelay (00:00:05)|ReusePortSocketTransportOptions.DrainTimeout (00:00:06)|HostOptions.ShutdownTimeout (00:00:10)")]
    public async Task ARemovalDelayThatDoesNotFitFailsAtStart(int delaySeconds, int? drainSeconds, string messageParts)
    {
        var port = PortAllocator.GetFreePort();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = [$"http://127.0.0.1:{port}"],
            ShutdownTimeout = TimeSpan.FromSeconds(10),
            ConfigureReusePort = o =>
            {
                o.RemovalDelay = TimeSpan.FromSeconds(delaySeconds);
                o.DrainTimeout = drainSeconds is { } drain ? TimeSpan.FromSeconds(drain) : null;
            },
        }));

        Assert.Equal(typeof(ReusePortSocketTransportOptions), error.OptionsType);
        Assert.Single(error.Failures);
        foreach (var part in messageParts.Split('|'))
        {
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
        }

        Assert.Empty(ListeningSockets.OnPort(port));
    }

    [Theory]
    [InlineData(8, null)]
    [InlineData(5, 5)]
    public async Task ARemovalDelayThatFitsStarts(int delaySeconds, int? drainSeconds)
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ShutdownTimeout = TimeSpan.FromSeconds(10),
            ConfigureReusePort = o =>
            {
                o.RemovalDelay = TimeSpan.FromSeconds(delaySeconds);
                o.DrainTimeout = drainSeconds is { } drain ? TimeSpan.FromSeconds(drain) : null;
            },
        });

        Assert.Equal(200, (await RawHttpClient.GetAsync(server.EndPoint)).StatusCode);
    }

    [Fact]
    public async Task ByDefaultTheDrainsBoundLeavesOutTheRemovalDelay()
    {
        var port = PortAllocator.GetFreePort();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}",
            ["--ReusePort:ListenerCount=1", "--ReusePort:RemovalDelay=00:00:03", "--shutdownTimeoutSeconds=9"]);
        await app.WaitUntilServingAsync(new IPEndPoint(IPAddress.Loopback, port));
        app.SignalTerm();

        // 9 s of shutdown, less the 3 s of delay, less Kestrel's 2 s.
        await app.WaitForEventAsync(40, s_timeout);
        var drainStarted = await app.WaitForEventAsync(12, _ => true, s_timeout);
        Assert.Equal(TimeSpan.FromSeconds(4), TimeSpan.Parse(drainStarted["DrainTimeout"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, await app.WaitForExitAsync(s_timeout));
    }
}
