using System;
using System.Globalization;

namespace CountersSnapshot;

/// <summary>The command line: which process, which meter, how long to listen, and the session's arguments.</summary>
internal sealed class SnapshotOptions
{
    public const string Usage = """
        Usage: CountersSnapshot --pid PID [--meter Kestrel.ReusePort] [--seconds 3] [--interval 1]
                                [--resume] [--max-time-series 1000] [--max-histograms 20]

        Opens an EventPipe session to the .NET process PID, enables the "System.Diagnostics.Metrics" EventSource as
        dotnet-counters does (SessionId, ClientId, Metrics=<meter>, RefreshInterval, MaxTimeSeries, MaxHistograms),
        listens for --seconds or until the process exits, and prints every instrument of the meter and each of its time
        series as a markdown table, then the raw event names seen.

          --pid PID             the process (any user's .NET process whose diagnostic socket this user can open)
          --meter NAME          the meter, or meter\instrument, or several separated by ';' (default Kestrel.ReusePort)
          --seconds S           how long to listen (default 3); the session also ends when the process exits
          --interval S          RefreshInterval: seconds between two reports of every time series (default 1, min 0.1)
          --resume              resume the runtime once the session is on: for a process started with
                                DOTNET_DefaultDiagnosticPortSuspend=1, so that the session sees its startup
          --max-time-series N   MaxTimeSeries (default 1000, as dotnet-counters)
          --max-histograms N    MaxHistograms: histogram time series tracked (default 20, as dotnet-counters)

        COUNTERSSNAPSHOT_TRACE=1 writes every event of the provider to stderr as it comes.

        Exit codes: 0 instruments of the meter seen; 1 bad arguments; 2 the process cannot be reached or refused the
        session; 3 no instrument of the meter seen; 4 another metrics session already runs in the process.
        """;

    public int Pid { get; private set; }

    public string Meter { get; private set; } = "Kestrel.ReusePort";

    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(3);

    public double RefreshIntervalSeconds { get; private set; } = 1;

    public bool Resume { get; private set; }

    public int MaxTimeSeries { get; private set; } = 1000;

    public int MaxHistograms { get; private set; } = 20;

    /// <summary>Parses the arguments, or returns null with the reason in <paramref name="error"/>.</summary>
    public static SnapshotOptions? Parse(string[] args, out string? error)
    {
        var options = new SnapshotOptions();
        var pidSeen = false;
        error = null;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "--resume")
            {
                options.Resume = true;
                continue;
            }

            if (name is "-h" or "--help")
            {
                error = "";
                return null;
            }

            if (i + 1 >= args.Length)
            {
                error = $"{name} needs a value";
                return null;
            }

            var value = args[++i];
            switch (name)
            {
                case "--pid" or "-p" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0:
                    options.Pid = pid;
                    pidSeen = true;
                    break;
                case "--meter" when value.Length > 0:
                    options.Meter = value;
                    break;
                case "--seconds" when TryPositive(value, out var seconds):
                    options.Duration = TimeSpan.FromSeconds(seconds);
                    break;
                case "--interval" when TryPositive(value, out var interval):
                    options.RefreshIntervalSeconds = Math.Max(interval, 0.1);
                    break;
                case "--max-time-series" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var series) && series > 0:
                    options.MaxTimeSeries = series;
                    break;
                case "--max-histograms" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var histograms) && histograms > 0:
                    options.MaxHistograms = histograms;
                    break;
                default:
                    error = $"unknown option or bad value: {name} {value}";
                    return null;
            }
        }

        if (!pidSeen)
        {
            error = "--pid is required";
            return null;
        }

        return options;
    }

    private static bool TryPositive(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value > 0 && double.IsFinite(value);
}
