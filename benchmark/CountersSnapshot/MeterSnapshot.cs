using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Microsoft.Diagnostics.Tracing;

namespace CountersSnapshot;

/// <summary>An instrument of the meter, as BeginInstrumentReporting / InstrumentPublished describe it.</summary>
internal sealed class InstrumentInfo(string meter, string name)
{
    public string Meter { get; } = meter;

    public string Name { get; } = name;

    /// <summary>The instrument's .NET type name, e.g. <c>Counter`1</c>.</summary>
    public string TypeName { get; set; } = "";

    public string Unit { get; set; } = "";

    public string Description { get; set; } = "";

    /// <summary>Reported by the listener's enumeration at the session's start: the instrument existed before it.</summary>
    public bool PublishedBeforeSession { get; set; }

    /// <summary>EndInstrumentReporting came: the meter was disposed (or the session reconfigured) while listening.</summary>
    public bool Ended { get; set; }

    /// <summary>The kind as dotnet-counters names it: counter, up-down counter, histogram, gauge, observable ...</summary>
    public string Kind => TypeName switch
    {
        "Counter`1" => "counter",
        "UpDownCounter`1" => "up-down counter",
        "Histogram`1" => "histogram",
        "Gauge`1" => "gauge",
        "ObservableCounter`1" => "observable counter",
        "ObservableUpDownCounter`1" => "observable up-down counter",
        "ObservableGauge`1" => "observable gauge",
        "" => "?",
        _ => TypeName,
    };
}

/// <summary>One time series: an instrument and one set of tags, with what the session's intervals reported for it.</summary>
internal sealed class SeriesState(string instrument, string tags)
{
    public string Instrument { get; } = instrument;

    /// <summary>The tags as MetricsEventSource formats them: <c>key=value,key=value</c>.</summary>
    public string Tags { get; } = tags;

    /// <summary>The event that reported it last: CounterRateValuePublished, HistogramValuePublished, ...</summary>
    public string EventName { get; set; } = "";

    public int Reports { get; set; }

    /// <summary>Counters and up-down counters: the value since the session began listening ("value").</summary>
    public string? Value { get; set; }

    /// <summary>Counters and up-down counters: the change over the last interval ("rate").</summary>
    public string? LastDelta { get; set; }

    /// <summary>Gauges: the last value reported.</summary>
    public string? LastValue { get; set; }

    /// <summary>Histograms: measurements over every interval of the session (the sum of each interval's count).</summary>
    public long HistogramCount { get; set; }

    public double HistogramSum { get; set; }

    /// <summary>Histograms: the percentiles of the last interval that had measurements, as reported ("0.5=...;0.95=...").</summary>
    public string? LastQuantiles { get; set; }

    public DateTime? LastMeasuredInterval { get; set; }
}

/// <summary>
/// What one session saw: the instruments of the meter, their time series, the raw event names, and the errors the
/// target process reported. Fed from TraceEvent's dynamic parser (payload fields by name, so event versions 0 to 3 of
/// MetricsEventSource all read the same).
/// </summary>
internal sealed class MeterSnapshot(string sessionId, IReadOnlyList<string> meterSpecs)
{
    private readonly Dictionary<string, InstrumentInfo> _instruments = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Instrument, string Tags), SeriesState> _series = [];
    private readonly SortedDictionary<string, int> _eventCounts = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, int> _otherSessionEvents = new(StringComparer.Ordinal);
    private readonly List<string> _errors = [];
    private readonly List<string> _warnings = [];
    private readonly object _gate = new();
    private bool _enumerationComplete;

    public string SessionId { get; } = sessionId;

    public int Intervals { get; private set; }

    public DateTime? FirstEvent { get; private set; }

    public DateTime? LastIntervalEnd { get; private set; }

    /// <summary>The id of the metrics session that already ran in the process when this one asked (MultipleSessionsNotSupportedError).</summary>
    public string? RefusedByRunningSession { get; private set; }

    public IReadOnlyList<string> Errors => _errors;

    public IReadOnlyList<string> Warnings => _warnings;

    public IReadOnlyDictionary<string, int> EventCounts => _eventCounts;

    public IReadOnlyDictionary<string, int> OtherSessionEvents => _otherSessionEvents;

    public IEnumerable<InstrumentInfo> Instruments => _instruments.Values.OrderBy(i => i.Name, StringComparer.Ordinal);

    public IEnumerable<SeriesState> SeriesOf(string instrument) =>
        _series.Values.Where(s => s.Instrument == instrument).OrderBy(s => s.Tags, StringComparer.Ordinal);

    public void Apply(TraceEvent e)
    {
        lock (_gate)
        {
            ApplyLocked(e);
        }
    }

    private void ApplyLocked(TraceEvent e)
    {
        var name = e.EventName ?? $"Event{(int)e.ID}";
        FirstEvent ??= e.TimeStamp;

        if (name == "MultipleSessionsNotSupportedError")
        {
            // Naming this session: an Enable command reached the EventSource while this session ran, and was refused
            // (another tool's session, or a second command for this one: a process whose MetricsEventSource was
            // enabled at startup gets two per session). Naming another session: this one was refused.
            var running = Text(e, "runningSessionId");
            if (running == SessionId)
            {
                Count(_eventCounts, name + " (naming this session: a later Enable was refused)");
            }
            else
            {
                Count(_eventCounts, name);
                RefusedByRunningSession = running ?? "";
            }

            return;
        }

        if (name == "MultipleSessionsConfiguredIncorrectlyError")
        {
            Count(_eventCounts, name);
            _errors.Add($"{name}: the shared session runs with other MaxHistograms/MaxTimeSeries/RefreshInterval ({string.Join(", ", e.PayloadNames.Select(p => $"{p}={e.PayloadByName(p)}"))})");
            return;
        }

        // Every other event of this source carries the session id first: another tool's session (or a reconfigured
        // one) is counted apart and otherwise ignored, as dotnet-counters does.
        var session = Text(e, "sessionId");
        if (session is not null && session != SessionId)
        {
            Count(_otherSessionEvents, name);
            return;
        }

        Count(_eventCounts, name);
        switch (name)
        {
            case "BeginInstrumentReporting" or "InstrumentPublished" or "EndInstrumentReporting":
                OnInstrument(e, name);
                break;
            case "InitialInstrumentEnumerationComplete":
                _enumerationComplete = true;
                break;
            // Event 3: TraceEvent names it after its task and opcode ("Collection/Stop").
            case "CollectionStop" or "Collection/Stop":
                Intervals++;
                LastIntervalEnd = e.TimeStamp;
                break;
            case "CounterRateValuePublished" or "UpDownCounterRateValuePublished":
                if (Series(e, name) is { } counter)
                {
                    counter.Value = Text(e, "value");
                    counter.LastDelta = Text(e, "rate");
                }

                break;
            case "GaugeValuePublished":
                if (Series(e, name) is { } gauge)
                {
                    gauge.LastValue = Text(e, "lastValue");
                }

                break;
            case "HistogramValuePublished" or "Base2ExponentialHistogramValuePublished":
                if (Series(e, name) is { } histogram)
                {
                    var count = Convert.ToInt64(e.PayloadByName("count") ?? 0, CultureInfo.InvariantCulture);
                    histogram.HistogramCount += count;
                    histogram.HistogramSum += Convert.ToDouble(e.PayloadByName("sum") ?? 0.0, CultureInfo.InvariantCulture);
                    if (count > 0)
                    {
                        histogram.LastQuantiles = Text(e, "quantiles") ?? "";
                        histogram.LastMeasuredInterval = e.TimeStamp;
                    }
                }

                break;
            case "Error" or "ObservableInstrumentCallbackError":
                _errors.Add($"{name}: {Text(e, "errorMessage")}");
                break;
            case "TimeSeriesLimitReached":
                _warnings.Add("TimeSeriesLimitReached: MaxTimeSeries reached, some time series are missing (--max-time-series)");
                break;
            case "HistogramLimitReached":
                _warnings.Add("HistogramLimitReached: MaxHistograms reached, some histogram time series are missing (--max-histograms)");
                break;
            default:
                break;
        }
    }

    private void OnInstrument(TraceEvent e, string name)
    {
        var meter = Text(e, "meterName") ?? "";
        var instrumentName = Text(e, "instrumentName") ?? "";
        if (!IsIncluded(meter, instrumentName))
        {
            return;
        }

        if (!_instruments.TryGetValue(instrumentName, out var info))
        {
            info = new InstrumentInfo(meter, instrumentName) { PublishedBeforeSession = !_enumerationComplete };
            _instruments.Add(instrumentName, info);
        }

        info.TypeName = Text(e, "instrumentType") ?? info.TypeName;
        info.Unit = Text(e, "unit") ?? info.Unit;
        info.Description = Text(e, "description") ?? info.Description;
        if (name == "EndInstrumentReporting")
        {
            info.Ended = true;
        }
    }

    private SeriesState? Series(TraceEvent e, string name)
    {
        var meter = Text(e, "meterName") ?? "";
        var instrumentName = Text(e, "instrumentName") ?? "";
        if (!IsIncluded(meter, instrumentName))
        {
            return null;
        }

        if (!_instruments.TryGetValue(instrumentName, out var info))
        {
            // The Begin event was lost (or came before this reader): the value events still name the instrument.
            info = new InstrumentInfo(meter, instrumentName) { Unit = Text(e, "unit") ?? "" };
            _instruments.Add(instrumentName, info);
        }

        var tags = Text(e, "tags") ?? "";
        if (!_series.TryGetValue((instrumentName, tags), out var series))
        {
            series = new SeriesState(instrumentName, tags);
            _series.Add((instrumentName, tags), series);
        }

        series.EventName = name;
        series.Reports++;
        return series;
    }

    /// <summary>The same matching as MetricsEventSource: a meter name (case-insensitive), <c>meter\instrument</c>, or <c>prefix*</c>.</summary>
    private bool IsIncluded(string meter, string instrument)
    {
        foreach (var spec in meterSpecs)
        {
            var slash = spec.IndexOf('\\', StringComparison.Ordinal);
            if (slash >= 0)
            {
                if (meter.Equals(spec[..slash].Trim(), StringComparison.OrdinalIgnoreCase) &&
                    instrument.Equals(spec[(slash + 1)..].Trim(), StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
            else if (spec.EndsWith('*'))
            {
                if (meter.StartsWith(spec[..^1], StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
            else if (meter.Equals(spec, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static string? Text(TraceEvent e, string field) =>
        e.PayloadIndex(field) >= 0 ? e.PayloadByName(field)?.ToString() : null;

    private static void Count(SortedDictionary<string, int> counts, string name) =>
        counts[name] = counts.TryGetValue(name, out var n) ? n + 1 : 1;
}
