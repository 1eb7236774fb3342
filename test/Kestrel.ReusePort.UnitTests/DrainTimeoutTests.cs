using Kestrel.ReusePort.Internal.Drain;

namespace Kestrel.ReusePort.UnitTests;

/// <summary>How long the drain waits: the option if set, else what the host's shutdown timeout leaves it.</summary>
public sealed class DrainTimeoutTests
{
    private static readonly TimeSpan s_reserve = TransportDrain.KestrelShutdownReserve;

    [Fact]
    public void TheOptionWinsOverTheShutdownTimeout() =>
        Assert.Equal(TimeSpan.FromSeconds(7), TransportDrain.TimeoutFor(TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10)));

    [Fact]
    public void ZeroIsAnOptionToo() =>
        Assert.Equal(TimeSpan.Zero, TransportDrain.TimeoutFor(TimeSpan.Zero, TimeSpan.FromSeconds(30), TimeSpan.Zero));

    [Fact]
    public void AnInfiniteShutdownTimeoutGivesAnInfiniteDrain() =>
        Assert.Equal(Timeout.InfiniteTimeSpan, TransportDrain.TimeoutFor(null, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(5)));

    [Fact]
    public void WithoutTheOptionKestrelsReserveIsLeftOfTheShutdownTimeout() =>
        Assert.Equal(TimeSpan.FromSeconds(30) - s_reserve, TransportDrain.TimeoutFor(null, TimeSpan.FromSeconds(30), TimeSpan.Zero));

    [Fact]
    public void TheRemovalDelayIsSubtracted() =>
        Assert.Equal(TimeSpan.FromSeconds(20) - s_reserve, TransportDrain.TimeoutFor(null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10)));

    [Theory]
    [InlineData(3, 0, 1500)]
    [InlineData(30, 27, 1500)]
    [InlineData(1, 0, 500)]
    public void ReserveNeverTakesMoreThanHalfOfWhatIsLeft(int shutdownSeconds, int delayedSeconds, int expectedMilliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMilliseconds),
            TransportDrain.TimeoutFor(null, TimeSpan.FromSeconds(shutdownSeconds), TimeSpan.FromSeconds(delayedSeconds)));
}
