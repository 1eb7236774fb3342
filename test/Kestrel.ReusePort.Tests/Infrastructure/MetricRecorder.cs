using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Records the measurements of the <c>Kestrel.ReusePort</c> meter created by one app's <see cref="IMeterFactory"/>, so
/// that servers of other tests running in parallel in this process do not count.
/// </summary>
public sealed class MetricRecorder : IDisposable
{
    public const string MeterName = "Kestrel.ReusePort";
    public const string AcceptedConnections = "kestrel.reuseport.accepted_connections";
    public const string AcceptErrors = "kestrel.reuseport.accept_errors";
    public const string ListeningSockets = "kestrel.reuseport.listening_sockets";
    public const string HandoffSockets = "kestrel.reuseport.handoff.sockets";
    public const string HandoffDuration = "kestrel.reuseport.handoff.duration";
    public const string WarmupDuration = "kestrel.reuseport.warmup.duration";
    public const string DrainDuration = "kestrel.reuseport.drain.duration";
    public const string DrainConnections = "kestrel.reuseport.drain.connections";

    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<RecordedMeasurement> _measurements = new();
    private readonly ConcurrentDictionary<string, string?> _units = new();
    private readonly Lock _observing = new();
    private ConcurrentQueue<RecordedMeasurement> _observations = new();

    /// <param name="meterScope">The app's <see cref="IMeterFactory"/>: the scope of the meters it creates.</param>
    public MetricRecorder(object meterScope)
    {
        ArgumentNullException.ThrowIfNull(meterScope);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName && ReferenceEquals(instrument.Meter.Scope, meterScope))
            {
                _units[instrument.Name] = instrument.Unit;
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>The unit every instrument of the meter was published with, by instrument name.</summary>
    public IReadOnlyDictionary<string, string?> Units => _units;

    /// <summary>Asks the observable instruments for their values now, and returns those of <paramref name="instrument"/>.</summary>
    public IReadOnlyList<RecordedMeasurement> Observe(string instrument)
    {
        lock (_observing)
        {
            _observations = new ConcurrentQueue<RecordedMeasurement>();
            _listener.RecordObservableInstruments();
            return [.. _observations.Where(m => m.Instrument == instrument)];
        }
    }

    public IReadOnlyList<RecordedMeasurement> Measurements(string instrument) =>
        [.. _measurements.Where(m => m.Instrument == instrument)];

    /// <summary>The sum of an instrument's measurements (a counter's total, an up-down counter's current value).</summary>
    public long Sum(string instrument, Func<RecordedMeasurement, bool>? filter = null) =>
        (long)Measurements(instrument).Where(filter ?? (_ => true)).Sum(m => m.Value);

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>();
        foreach (var tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        var measurement = new RecordedMeasurement(instrument.Name, value, copy);
        if (instrument.IsObservable)
        {
            _observations.Enqueue(measurement);
        }
        else
        {
            _measurements.Enqueue(measurement);
        }
    }
}
