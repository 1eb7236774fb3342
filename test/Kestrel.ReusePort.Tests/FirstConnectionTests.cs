using System.Diagnostics;
using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// A new instance serves the first connection it takes from the port warm: the cost of a cold pipeline (the JIT, the
/// route table, the endpoints: 70-180 ms here) was paid by its warm-up, before it accepted.
/// </summary>
[Collection(SerialTests.Name)]
public class FirstConnectionTests(ITestOutputHelper output)
{
    private const int Rounds = 3;
    private const int Requests = 10;

    [Fact]
    public async Task ANewInstanceServesItsFirstConnectionFromThePortAboutAsFastAsItsLaterOnes()
    {
        var firsts = new List<double>();
        var laters = new List<double>();
        for (var round = 0; round < Rounds; round++)
        {
            var port = PortAllocator.GetFreePort();
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            var urls = $"http://127.0.0.1:{port}";
            using var old = await SampleProcess.StartRunningAsync(port, ["--ReusePort:ListenerCount=2"], "old");
            using var next = SampleProcess.Start(urls, ["--ReusePort:ListenerCount=2"], name: "new");
            await next.WaitUntilStartedAsync();
            Assert.True(next.HasEvent(1, e => e["InheritedCount"] == "2"), next.Output);

            // With the old instance frozen, every connection goes to the new one: its very first, then more.
            await old.FreezeAsync();
            try
            {
                var times = new List<double>();
                for (var i = 0; i < Requests; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    var response = await RawHttpClient.GetAsync(endPoint);
                    times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    Assert.Equal(next.Pid, response.RequirePid());
                }

                firsts.Add(times[0]);
                laters.Add(Median(times.Skip(1)));
                output.WriteLine($"round {round + 1}: first {times[0]:0.0} ms, then median {Median(times.Skip(1)):0.0} ms ({string.Join(" ", times.Select(t => t.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))})");
            }
            finally
            {
                old.Thaw();
            }
        }

        // Medians over the rounds. Cold, the first request costs 70 ms or more on this machine; warm, a few.
        var first = Median(firsts);
        var later = Median(laters);
        output.WriteLine($"median first {first:0.0} ms, median later {later:0.0} ms");
        Assert.True(first <= Math.Max(25, 5 * later), $"The first connection took {first:0.0} ms against {later:0.0} ms for the next ones: it met a cold pipeline.");
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
