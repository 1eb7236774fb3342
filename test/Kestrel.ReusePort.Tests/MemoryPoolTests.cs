using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// Connections accepted by this transport buffer in Kestrel's own memory pool, as stock Kestrel's do. Kestrel hands
/// that pool to its connection options only through an internal constructor, which the transport reaches by
/// reflection: this shows that path works with the Kestrel it runs on, since the public one would use
/// <c>MemoryPool&lt;byte&gt;.Shared</c> instead.
/// </summary>
public class MemoryPoolTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ConnectionsUseKestrelsMemoryPool(bool reusePort)
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            UseReusePort = reusePort,
            ConfigureReusePort = o => o.ListenerCount = 1,
            ConfigureApp = app => app.MapGet("/pool", (HttpContext context) =>
            {
                var pool = context.Features.Get<IMemoryPoolFeature>()?.MemoryPool;
                return pool is null ? "none" : ReferenceEquals(pool, System.Buffers.MemoryPool<byte>.Shared) ? "shared" : pool.GetType().FullName!;
            }),
        });

        var response = await RawHttpClient.GetAsync(server.EndPoint, "/pool");

        Assert.Equal(200, response.StatusCode);
        Assert.NotEqual("shared", response.Body);
        Assert.NotEqual("none", response.Body);
        Assert.Contains("PinnedBlockMemoryPool", response.Body, StringComparison.Ordinal);
        Assert.Empty(server.Logs.ReusePortEvents(53));
    }
}
