using System;
using System.Numerics;
using System.Threading;

namespace LoadTimeline;

/// <summary>
/// A log-linear histogram of latencies in nanoseconds (HdrHistogram's layout): exact below 128 ns, then every power of
/// two is split into 64 buckets, so a bucket is 0.8-1.6% wide. 2,048 buckets cover 1 ns to ~137 s (longer values
/// land in the last bucket; the exact maximum is kept apart). Recording is lock-free (<see cref="Interlocked"/>), so any
/// thread may record while one thread reads a histogram it no longer hands out.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBits = 6;
    private const int Sub = 1 << SubBits;            // 64
    internal const int BucketCount = 2048;            // the last one starts at 127 << 30 ns = 136 s

    private readonly long[] _buckets = new long[BucketCount];
    private long _count;
    private long _max;

    public long Count => Volatile.Read(ref _count);

    public long MaxNanoseconds => Volatile.Read(ref _max);

    public void Record(long nanoseconds)
    {
        if (nanoseconds < 0)
        {
            nanoseconds = 0;
        }

        Interlocked.Increment(ref _buckets[Index(nanoseconds)]);
        Interlocked.Increment(ref _count);
        long max = Volatile.Read(ref _max);
        while (nanoseconds > max)
        {
            long seen = Interlocked.CompareExchange(ref _max, nanoseconds, max);
            if (seen == max)
            {
                break;
            }

            max = seen;
        }
    }

    /// <summary>Adds <paramref name="other"/> into this one; call when nobody records into either.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < BucketCount; i++)
        {
            _buckets[i] += other._buckets[i];
        }

        _count += other._count;
        _max = Math.Max(_max, other._max);
    }

    /// <summary>The latency at quantile <paramref name="q"/> (0-1) in milliseconds, NaN when empty: the middle of
    /// the bucket that holds the value of that rank, never above the exact maximum.</summary>
    public double PercentileMilliseconds(double q)
    {
        long count = Count;
        if (count == 0)
        {
            return double.NaN;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(q * count));
        long seen = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            seen += Volatile.Read(ref _buckets[i]);
            if (seen >= rank)
            {
                long low = LowerBound(i);
                long high = LowerBound(i + 1) - 1;
                double mid = low + ((high - low) / 2.0);
                return Math.Min(mid, MaxNanoseconds) / 1e6;
            }
        }

        return MaxNanoseconds / 1e6;
    }

    internal static int Index(long value)
    {
        if (value < 2 * Sub)
        {
            return (int)value;
        }

        int msb = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = msb - SubBits;
        int index = (shift * Sub) + (int)(value >> shift);
        return Math.Min(index, BucketCount - 1);
    }

    internal static long LowerBound(int index)
    {
        if (index < 2 * Sub)
        {
            return index;
        }

        int shift = (index / Sub) - 1;
        long sub = (index % Sub) + Sub;
        return sub << shift;
    }
}
