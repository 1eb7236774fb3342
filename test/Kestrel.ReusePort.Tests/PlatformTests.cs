using Kestrel.ReusePort.Internal.Listening;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Tests;

/// <summary>Which binding mode the transport picks, from the platform and <see cref="UnsupportedPlatformBehavior"/>.</summary>
public class PlatformTests
{
    [Theory]
    [InlineData(true, UnsupportedPlatformBehavior.UseStockSockets, ReusePortMode.ReusePort)]
    [InlineData(true, UnsupportedPlatformBehavior.Throw, ReusePortMode.ReusePort)]
    [InlineData(false, UnsupportedPlatformBehavior.UseStockSockets, ReusePortMode.StockSockets)]
    [InlineData(false, UnsupportedPlatformBehavior.Throw, ReusePortMode.Throw)]
    internal void DecideFollowsTheTruthTable(bool isLoadBalancingSupported, UnsupportedPlatformBehavior behavior, ReusePortMode expected)
    {
        Assert.Equal(expected, ReusePortPlatform.Decide(isLoadBalancingSupported, behavior));
    }

    [Fact]
    public void LinuxBalancesSoReusePort()
    {
        Assert.True(OperatingSystem.IsLinux(), "These tests run on Linux.");
        Assert.True(ReusePortPlatform.IsLoadBalancingSupported);
    }

    [Theory]
    [InlineData(UnsupportedPlatformBehavior.UseStockSockets)]
    [InlineData(UnsupportedPlatformBehavior.Throw)]
    public void FactoryUsesReusePortOnLinuxWhateverTheFallback(UnsupportedPlatformBehavior behavior)
    {
        var factory = new ReusePortSocketTransportFactory(
            Options.Create(new ReusePortSocketTransportOptions { UnsupportedPlatformBehavior = behavior }),
            Options.Create(new SocketTransportOptions()),
            NullLoggerFactory.Instance);

        Assert.Equal(ReusePortMode.ReusePort, factory.Mode);
    }
}
