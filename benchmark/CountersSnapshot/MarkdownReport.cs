using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace CountersSnapshot;

/// <summary>Writes a session's snapshot as markdown: a heading, one table row per time series, the raw event names.</summary>
internal static class MarkdownReport
{
    public static void Write(TextWriter output, SnapshotOptions options, string processLabel, SessionResult result)
    {
        var snapshot = result.Snapshot;
        var interval = options.RefreshIntervalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        output.WriteLine($"### {options.Meter} in pid {options.Pid}{processLabel}");
        output.WriteLine();
        var ending = result.End switch
        {
            SessionEnd.TimeUp => "the time was up",
            SessionEnd.Cancelled => "stopped (signal)",
            _ => "the process exited (or closed the session)",
        };
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Session `{snapshot.SessionId}`: listened {result.Listened.TotalSeconds:0.0} s until {ending}, RefreshInterval {interval} s, {snapshot.Intervals} intervals reported{(options.Resume ? ", runtime resumed by this session" : "")}."));
        output.WriteLine($"Provider `{MetricsSession.ProviderName}`, keywords 0x{result.Keywords:X}, arguments: {string.Join(", ", result.Arguments.Where(a => a.Key != "SessionId").Select(a => $"{a.Key}={a.Value}"))}.");
        output.WriteLine();

        var instruments = snapshot.Instruments.ToList();
        if (instruments.Count > 0)
        {
            output.WriteLine("| instrument | type | unit | tags | value | last interval |");
            output.WriteLine("| --- | --- | --- | --- | --- | --- |");
            foreach (var instrument in instruments)
            {
                var series = snapshot.SeriesOf(instrument.Name).ToList();
                if (series.Count == 0)
                {
                    Row(output, instrument, "", "(no measurement while listening)", "");
                    continue;
                }

                foreach (var s in series)
                {
                    var (value, last) = Values(instrument, s, interval);
                    Row(output, instrument, FormatTags(s.Tags), value, last);
                }
            }

            output.WriteLine();
            var before = instruments.Where(i => i.PublishedBeforeSession).Select(i => i.Name).ToList();
            var after = instruments.Where(i => !i.PublishedBeforeSession).Select(i => i.Name).ToList();
            output.WriteLine($"Instruments created before the session (reported by the listener's first enumeration, measurements before it not seen): {(before.Count == 0 ? "none" : string.Join(", ", before))}.");
            output.WriteLine($"Instruments created while listening: {(after.Count == 0 ? "none" : string.Join(", ", after))}.");
            var ended = instruments.Where(i => i.Ended).Select(i => i.Name).ToList();
            if (ended.Count > 0)
            {
                output.WriteLine($"EndInstrumentReporting (meter disposed while listening): {string.Join(", ", ended)}.");
            }
        }
        else
        {
            output.WriteLine($"No instrument of `{options.Meter}` was reported.");
        }

        output.WriteLine();
        output.WriteLine($"Raw events: {(snapshot.EventCounts.Count == 0 ? "none" : string.Join(", ", snapshot.EventCounts.Select(e => $"{e.Key} ×{e.Value}")))}.");
        if (snapshot.OtherSessionEvents.Count > 0)
        {
            output.WriteLine($"Events of another session (ignored): {string.Join(", ", snapshot.OtherSessionEvents.Select(e => $"{e.Key} ×{e.Value}"))}.");
        }

        foreach (var warning in snapshot.Warnings.Distinct())
        {
            output.WriteLine($"Warning: {warning}");
        }

        foreach (var error in snapshot.Errors.Distinct())
        {
            output.WriteLine($"Error reported by the process: {error}");
        }

        output.WriteLine();
        output.WriteLine("Counters and up-down counters: `value` is the total since this session began listening (MetricsEventSource's \"value\"), `last interval` the change in the last interval (\"rate\"). Histograms: count and sum over the session's intervals, percentiles of the last interval that had measurements.");
    }

    private static (string Value, string Last) Values(InstrumentInfo instrument, SeriesState s, string interval)
    {
        switch (s.EventName)
        {
            case "CounterRateValuePublished" or "UpDownCounterRateValuePublished":
                var delta = string.IsNullOrEmpty(s.LastDelta) ? "(none)" : Signed(s.LastDelta);
                return (s.Value is { Length: > 0 } v ? v : "(none)", $"{delta} in {interval} s");
            case "GaugeValuePublished":
                return (s.LastValue is { Length: > 0 } g ? g : "(no value)", "");
            case "HistogramValuePublished" or "Base2ExponentialHistogramValuePublished":
                var value = string.Create(CultureInfo.InvariantCulture, $"count {s.HistogramCount}, sum {Number(s.HistogramSum)}");
                var last = s.LastQuantiles is null ? "(no measurement while listening)" : FormatQuantiles(s.LastQuantiles);
                return (value, last);
            default:
                return ($"({instrument.Kind}: {s.EventName})", "");
        }
    }

    private static void Row(TextWriter output, InstrumentInfo instrument, string tags, string value, string last) =>
        output.WriteLine($"| {Cell(instrument.Name)} | {Cell(instrument.Kind)} | {Cell(instrument.Unit)} | {tags} | {Cell(value)} | {Cell(last)} |");

    /// <summary><c>a=1,b=2</c> as <c>a=1, b=2</c>, each cell escaped.</summary>
    private static string FormatTags(string tags) =>
        tags.Length == 0 ? "(none)" : string.Join(", ", tags.Split(',').Select(Cell));

    /// <summary><c>0.5=0.01;0.95=0.02;0.99=0.02</c> as <c>p50 0.01, p95 0.02, p99 0.02</c>.</summary>
    private static string FormatQuantiles(string quantiles)
    {
        var parts = new List<string>();
        foreach (var part in quantiles.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 &&
                double.TryParse(part[..eq], NumberStyles.Float, CultureInfo.InvariantCulture, out var q) &&
                double.TryParse(part[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"p{q * 100:0.#} {Number(v)}"));
            }
            else
            {
                parts.Add(part);
            }
        }

        return parts.Count == 0 ? "(no percentiles)" : string.Join(", ", parts);
    }

    private static string Number(double value) => value.ToString("0.######", CultureInfo.InvariantCulture);

    private static string Signed(string delta) =>
        double.TryParse(delta, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 ? "+" + delta : delta;

    private static string Cell(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            _ = c switch
            {
                '|' => builder.Append("\\|"),
                '\r' or '\n' => builder.Append(' '),
                _ => builder.Append(c),
            };
        }

        return builder.ToString();
    }
}
