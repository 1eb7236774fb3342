using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// The readiness check of <c>AddHealthChecks().AddReusePortReadiness()</c>, which the sample maps at <c>/ready</c>: a
/// balancer that probes it sees the instance not ready from SIGTERM on, while the removal delay keeps it accepting and
/// tells every client to reconnect elsewhere.
/// </summary>
public class ReadinessProbeTests
{
    private const int RemovalDelayStarted = 37;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TheReadinessCheckTurnsUnhealthyAtSigtermWhileTheRemovalDelayKeepsServing()
    {
        var endPoint = new IPEndPoint(IPAddress.Parse("127.0.0.2"), PortAllocator.GetFreePort());
        using var app = SampleProcess.Start($"http://{endPoint}", ["--ReusePort:ListenerCount=1", "--ReusePort:RemovalDelay=00:00:15"]);
        await app.WaitUntilServingAsync(endPoint);

        var before = await KeepAliveGetAsync(endPoint, "/ready");
        Assert.Equal(200, before.StatusCode);
        Assert.False(before.ConnectionClose);

        app.SignalTerm();
        await app.WaitForEventAsync(RemovalDelayStarted, s_timeout);

        // Still accepting, but not ready: the probe fails, and every response asks its client to reconnect.
        var ready = await KeepAliveGetAsync(endPoint, "/ready");
        Assert.Equal(503, ready.StatusCode);
        Assert.True(ready.ConnectionClose);

        // Liveness is not readiness: the instance is healthy, only leaving.
        var live = await KeepAliveGetAsync(endPoint, "/healthz");
        Assert.Equal(200, live.StatusCode);
        Assert.True(live.ConnectionClose);
    }

    private static async Task<RawHttpResponse> KeepAliveGetAsync(IPEndPoint endPoint, string path)
    {
        using var client = await RawHttpClient.ConnectAsync(endPoint);
        return await client.GetAsync(path, keepAlive: true);
    }
}
