using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Benchmarks;

/// <summary>
/// <c>--alternate</c>: the <see cref="AcceptBenchmarks"/> operation, timed in turns (A B C A B C ...) instead of one
/// benchmark after the other, so that a noisy neighbour slows every transport alike; medians over the rounds.
/// BenchmarkDotNet cannot interleave benchmarks, and on a shared 2-core machine its rows drift apart by 2x.
/// </summary>
public static class AlternatingRun
{
    public static async Task<int> RunAsync(int rounds, double seconds)
    {
        var transports = Transports.All().ToArray();
        var rates = transports.ToDictionary(t => t, _ => new List<double>());
        var bytes = transports.ToDictionary(t => t, _ => new List<double>());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"accept+close, {AcceptBenchmarks.ConnectionsPerOperation} connections in flight, {rounds} rounds of {seconds} s per transport, in turns"));

        for (var round = 0; round < rounds; round++)
        {
            // The order rotates too, so that no transport always runs first or last in a round.
            for (var i = 0; i < transports.Length; i++)
            {
                var transport = transports[(i + round) % transports.Length];
                var (rate, allocated) = await MeasureAsync(transport, seconds).ConfigureAwait(false);
                rates[transport].Add(rate);
                bytes[transport].Add(allocated);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round + 1}: {string.Join(", ", transports.Select(t => $"{t} {rates[t][^1]:F0}/s"))}"));
        }

        var baseline = Median(rates[Transports.Stock]);
        Console.WriteLine();
        Console.WriteLine("| transport | connections/s (median) | vs Stock | min - max | µs per connection | allocated B per connection (median) |");
        Console.WriteLine("| --- | ---: | ---: | --- | ---: | ---: |");
        foreach (var transport in transports)
        {
            var median = Median(rates[transport]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {transport} | {median:F0} | {median / baseline:F2} | {rates[transport].Min():F0} - {rates[transport].Max():F0} | {1e6 / median:F1} | {Median(bytes[transport]):F0} |"));
        }

        return 0;
    }

    private static async Task<(double Rate, double BytesPerConnection)> MeasureAsync(string transport, double seconds)
    {
        var benchmark = new AcceptBenchmarks { Transport = transport };
        benchmark.Setup();
        try
        {
            // Warm-up: JIT, thread pool, memory pool.
            var warmUp = Stopwatch.StartNew();
            while (warmUp.Elapsed.TotalSeconds < Math.Min(0.3, seconds / 3))
            {
                await benchmark.AcceptAndClose().ConfigureAwait(false);
            }

            var operations = 0;
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed.TotalSeconds < seconds)
            {
                await benchmark.AcceptAndClose().ConfigureAwait(false);
                operations++;
            }

            watch.Stop();
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            var connections = (double)operations * AcceptBenchmarks.ConnectionsPerOperation;
            return (connections / watch.Elapsed.TotalSeconds, allocated / connections);
        }
        finally
        {
            benchmark.Cleanup();
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
