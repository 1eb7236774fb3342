namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Tests that compare latencies: xunit runs this collection alone, after the parallel ones, so that other tests'
/// processes do not compete for the 2 cores while it measures.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialTests
{
    public const string Name = "Serial: latency comparisons";
}
