using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.ReusePort.Tests;

/// <summary>A socket without SO_REUSEPORT (stock Kestrel) and ours cannot share a port, in either order.</summary>
public class BindConflictTests
{
    [Fact]
    public async Task ReusePortServerCannotJoinAPortHeldByStockKestrel()
    {
        await using var stock = await InProcessServer.StartAsync(new InProcessServerOptions { Name = "stock", UseReusePort = false });
        var port = stock.Port;
        Assert.Single(ListeningSockets.OnPort(port));

        await using var ours = InProcessServer.Create(new InProcessServerOptions
        {
            Name = "ours",
            Urls = [$"http://127.0.0.1:{port}"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });
        var error = await Assert.ThrowsAsync<IOException>(ours.StartAsync);

        // Kestrel's "Failed to bind to address ...", around our message saying what to do about it.
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        var inner = Assert.IsType<AddressInUseException>(error.InnerException);
        Assert.Contains($"127.0.0.1:{port}", inner.Message, StringComparison.Ordinal);
        Assert.Contains("UseReusePortSockets()", inner.Message, StringComparison.Ordinal);
        Assert.Contains("same effective user", inner.Message, StringComparison.Ordinal);
        Assert.Contains($"user id {LibC.GetEffectiveUserId()}", inner.Message, StringComparison.Ordinal);

        // No half-bound group was left behind, and the stock server keeps serving.
        Assert.Single(ListeningSockets.OnPort(port));
        var response = await RawHttpClient.GetAsync(stock.EndPoint);
        Assert.StartsWith(stock.Greeting, response.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StockKestrelCannotJoinAPortHeldByReusePortServer()
    {
        await using var ours = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Name = "ours",
            ConfigureReusePort = o => o.ListenerCount = 2,
        });
        var port = ours.Port;

        await using var stock = InProcessServer.Create(new InProcessServerOptions
        {
            Name = "stock",
            UseReusePort = false,
            Urls = [$"http://127.0.0.1:{port}"],
        });
        var error = await Assert.ThrowsAsync<IOException>(stock.StartAsync);
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.IsType<AddressInUseException>(error.InnerException);

        Assert.Equal(2, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        Assert.Equal(2, ListeningSockets.OnPort(port).Count);
        var responses = await RawHttpClient.GetManyAsync(new IPEndPoint(IPAddress.Loopback, port), 20);
        Assert.All(responses, r => Assert.StartsWith(ours.Greeting, r.Body, StringComparison.Ordinal));
    }
}
