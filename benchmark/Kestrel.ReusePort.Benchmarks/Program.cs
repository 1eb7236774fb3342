using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using BenchmarkDotNet.Running;
using Kestrel.ReusePort.Benchmarks;

// dotnet run -c Release --project benchmark/Kestrel.ReusePort.Benchmarks -- --filter '*'    full BenchmarkDotNet run
// ... -- --quick             the same with BenchmarkDotNet's ShortRun job (= --job short)
// ... -- --spread [N]        connections per socket of each ListenerCount, from the transport's metrics (no timing)
// ... -- --steering [N]      the same spread under CPU steering policies (SO_INCOMING_CPU, cBPF), on plain sockets
// ... -- --alternate [R] [S] the same operation timed in turns (A B C A B C ...), R rounds of S seconds, medians
// Any other BenchmarkDotNet argument (--list flat, --exporters json, ...) is passed through.
if (args.Length > 0 && args[0] == "--spread")
{
    var connections = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000;
    return await SpreadReport.RunAsync(connections).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == "--steering")
{
    var connections = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000;
    return await SteeringReport.RunAsync(connections).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == "--alternate")
{
    var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
    var seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 1.0;
    return await AlternatingRun.RunAsync(rounds, seconds).ConfigureAwait(false);
}

var arguments = new List<string>(args.Where(a => a != "--quick"));
if (args.Contains("--quick"))
{
    arguments.AddRange(["--job", "short"]);
}

// Without a filter BenchmarkSwitcher asks on the console which benchmark to run; a script cannot answer.
if (!arguments.Any(a => a is "--filter" or "-f" or "--list" or "--allCategories" or "--anyCategories" or "--help" or "-h" or "--version"))
{
    arguments.AddRange(["--filter", "*"]);
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(AcceptBenchmarks).Assembly).Run([.. arguments]);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
