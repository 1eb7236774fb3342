using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>The kinds of IP endpoints Kestrel binds: port 0, IPv6, dual mode, localhost, several at once.</summary>
public class EndpointTests
{
    [Fact]
    public async Task PortZeroGetsOnePortForAllSockets()
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = ["http://127.0.0.1:0"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });

        var address = Assert.Single(server.Addresses);
        Assert.NotEqual(0, address.Port);

        // The first socket picked the port and the second joined it, rather than picking a port of its own.
        var sockets = ListeningSockets.HeldBy(Environment.ProcessId, address.Port);
        Assert.Equal(2, sockets.Count);
        Assert.All(sockets, s => Assert.Equal(IPAddress.Loopback, s.Address));
        Assert.Contains(server.Logs.ReusePortEvents(1), e => (e.State("EndPoint"), e.State("SocketCount"), e.State("InheritedCount")) == ($"127.0.0.1:{address.Port}", "2", "0"));

        var response = await RawHttpClient.GetAsync(server.EndPoint);
        Assert.Equal(200, response.StatusCode);
        Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IPv6LoopbackListensAndAnswersOnIPv6()
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = ["http://[::1]:0"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });

        var address = Assert.Single(server.Addresses);
        Assert.Equal(IPAddress.IPv6Loopback, server.EndPoint.Address);
        var sockets = ListeningSockets.HeldBy(Environment.ProcessId, address.Port);
        Assert.Equal(2, sockets.Count);
        Assert.All(sockets, s => Assert.Equal(IPAddress.IPv6Loopback, s.Address));

        var response = await RawHttpClient.GetAsync(new IPEndPoint(IPAddress.IPv6Loopback, address.Port));
        Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ListenAnyIP")]
    [InlineData("http://[::]:0")]
    public async Task AnyIPv6IsDualModeAndAnswersIPv4AndIPv6(string how)
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureKestrel = how == "ListenAnyIP" ? k => k.ListenAnyIP(0) : null,
            Urls = [how],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });

        var port = Assert.Single(server.Addresses).Port;
        Assert.NotEqual(0, port);

        // Two [::] sockets and no IPv4 socket: IPv4 clients arrive through dual mode.
        var sockets = ListeningSockets.HeldBy(Environment.ProcessId, port);
        Assert.Equal(2, sockets.Count);
        Assert.All(sockets, s => Assert.Equal(IPAddress.IPv6Any, s.Address));

        // Several connections each, so that both sockets of the group are exercised in both families.
        var overIPv4 = await RawHttpClient.GetManyAsync(new IPEndPoint(IPAddress.Loopback, port), 20);
        var overIPv6 = await RawHttpClient.GetManyAsync(new IPEndPoint(IPAddress.IPv6Loopback, port), 20);
        Assert.All(overIPv4.Concat(overIPv6), r => Assert.StartsWith(server.Greeting, r.Body, StringComparison.Ordinal));
    }

    [Fact]
    public async Task LocalhostListensOnIPv4AndIPv6Loopback()
    {
        var port = PortAllocator.GetFreePort(alsoIPv6Loopback: true);
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            Urls = [$"http://localhost:{port}"],
            ConfigureReusePort = o => o.ListenerCount = 2,
        });

        var sockets = ListeningSockets.HeldBy(Environment.ProcessId, port);
        Assert.Equal(2, sockets.Count(s => s.Address.Equals(IPAddress.Loopback)));
        Assert.Equal(2, sockets.Count(s => s.Address.Equals(IPAddress.IPv6Loopback)));
        Assert.Equal(4, sockets.Count);

        foreach (var address in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            var response = await RawHttpClient.GetAsync(new IPEndPoint(address, port));
            Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task SeveralEndpointsEachGetTheirOwnSockets()
    {
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureKestrel = k =>
            {
                k.Listen(IPAddress.Loopback, 0);
                k.Listen(IPAddress.Loopback, 0);
                k.Listen(IPAddress.IPv6Loopback, 0);
            },
            ConfigureReusePort = o => o.ListenerCount = 2,
        });

        var addresses = server.Addresses;
        Assert.Equal(3, addresses.Count);
        Assert.Equal(3, addresses.Select(a => a.Port).Distinct().Count());
        Assert.Equal(3, server.Logs.ReusePortEvents(1).Count);

        foreach (var address in addresses)
        {
            var endPoint = InProcessServer.ToEndPoint(address);
            var sockets = ListeningSockets.HeldBy(Environment.ProcessId, address.Port);
            Assert.Equal(2, sockets.Count);
            Assert.All(sockets, s => Assert.Equal(endPoint.Address, s.Address));
            Assert.Contains(server.Logs.ReusePortEvents(1), e => (e.State("EndPoint"), e.State("SocketCount")) == (endPoint.ToString(), "2"));

            var response = await RawHttpClient.GetAsync(endPoint);
            Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);
        }
    }
}
