using Kestrel.ReusePort.Internal.Listening;

namespace Kestrel.ReusePort.UnitTests;

public sealed class ReusePortPlatformTests
{
    [Theory]
    [InlineData(true, UnsupportedPlatformBehavior.UseStockSockets, nameof(ReusePortMode.ReusePort))]
    [InlineData(true, UnsupportedPlatformBehavior.Throw, nameof(ReusePortMode.ReusePort))]
    [InlineData(false, UnsupportedPlatformBehavior.UseStockSockets, nameof(ReusePortMode.StockSockets))]
    [InlineData(false, UnsupportedPlatformBehavior.Throw, nameof(ReusePortMode.Throw))]
    public void TheModeFollowsThePlatformAndTheOption(bool supported, UnsupportedPlatformBehavior behavior, string expected) =>
        Assert.Equal(expected, ReusePortPlatform.Decide(supported, behavior).ToString());

    [Fact]
    public void ThisLinuxBalancesReusePortGroups() => Assert.Equal(OperatingSystem.IsLinux(), ReusePortPlatform.IsLoadBalancingSupported);
}
