using System.Globalization;
using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// TieredCompilationWorkerNice: under traffic, the JIT sample's tiered-compilation worker thread (<c>.NET Tiered Com</c>)
/// runs at the nice value asked for, whenever the runtime (re)creates it, while the threads that serve keep theirs.
/// </summary>
public class TieredCompilationWorkerNiceTests
{
    private const string WorkerName = ".NET Tiered Com";
    private static readonly TimeSpan s_timeout = SampleProcess.StartTimeout;

    [Fact]
    public async Task TheTieredCompilationWorkerRunsAtTheNiceValueAskedFor()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var app = await SampleProcess.StartRunningAsync(
            port, ["--ReusePort:ListenerCount=2", "--ReusePort:TieredCompilationWorkerNice=15"], "app");

        // Traffic makes the runtime recompile the hot path; the worker exists while it does. Every worker seen must be
        // at nice 15, within the watch's period, and at least one must have been seen.
        await using var load = LoadGenerator.Start(endPoint, LoadMode.Churn);
        var seen = new List<(int ThreadId, int Nice)>();
        await Eventually.UntilAsync(
            () =>
            {
                seen.AddRange(Threads(app.Pid).Where(t => t.Name == WorkerName).Select(t => (t.ThreadId, t.Nice)));
                return seen.Any(t => t.Nice == 15);
            },
            s_timeout,
            $"a '{WorkerName}' thread of {app} at nice 15");

        // The threads that serve are left alone: they keep the nice value the process started with (its main thread's).
        var threads = Threads(app.Pid);
        var initial = threads.Single(t => t.ThreadId == app.Pid).Nice;
        Assert.NotEqual(15, initial);
        Assert.All(threads.Where(t => t.Name != WorkerName), t => Assert.Equal(initial, t.Nice));
        var result = await load.StopAsync();
        Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());
    }

    private static List<(int ThreadId, string Name, int Nice)> Threads(int pid)
    {
        var threads = new List<(int, string, int)>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
                var stat = File.ReadAllText(Path.Combine(task, "stat"));

                // Field 19 of stat is the nice value; fields are counted after the name in parentheses (field 2).
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                threads.Add((int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture), name, int.Parse(fields[16], CultureInfo.InvariantCulture)));
            }
            catch (IOException)
            {
                // A thread that exited meanwhile.
            }
        }

        return threads;
    }
}
