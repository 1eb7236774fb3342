using System;
using HdrHistogram;

namespace LoadTimeline;

/// <summary>
/// Latencies in nanoseconds, in HdrHistogram's histograms: 2 significant digits (every bucket at most 1% wide) from
/// 1 µs to 2 minutes, longer values recorded as 2 minutes. Writes are thread safe, so any connection records while one
/// thread reads a histogram that is no longer handed out.
/// </summary>
internal static class Latency
{
    private const long LowestNanoseconds = 1_000;
    private const long HighestNanoseconds = 120_000_000_000;

    // 2 digits keep a histogram at about 22 KB, below the large object heap: one is made per interval.
    public static HistogramBase CreateHistogram() =>
        HistogramFactory.With64BitBucketSize()
            .WithValuesFrom(LowestNanoseconds)
            .WithValuesUpTo(HighestNanoseconds)
            .WithPrecisionOf(2)
            .WithThreadSafeWrites()
            .Create();

    public static void Record(HistogramBase histogram, long nanoseconds) =>
        histogram.RecordValue(Math.Clamp(nanoseconds, 0, HighestNanoseconds));

    /// <summary>The latency at quantile <paramref name="q"/> (0-1) in milliseconds, NaN when empty.</summary>
    public static double PercentileMilliseconds(HistogramBase histogram, double q) =>
        histogram.TotalCount == 0 ? double.NaN : histogram.GetValueAtPercentile(q * 100) / 1e6;

    /// <summary>The largest latency in milliseconds (to the histogram's precision), NaN when empty.</summary>
    public static double MaxMilliseconds(HistogramBase histogram) =>
        histogram.TotalCount == 0 ? double.NaN : histogram.GetMaxValue() / 1e6;
}
