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

    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<RecordedMeasurement> _measurements = new();

    /// <param name="meterScope">The app's <see cref="IMeterFactory"/>: the scope of the meters it creates.</param>
    public MetricRecorder(object meterScope)
    {
        ArgumentNullException.ThrowIfNull(meterScope);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName && ReferenceEquals(instrument.Meter.Scope, meterScope))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var copy = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                copy[tag.Key] = tag.Value;
            }

            _measurements.Enqueue(new RecordedMeasurement(instrument.Name, value, copy));
        });
        _listener.Start();
    }

    public IReadOnlyList<RecordedMeasurement> Measurements(string instrument) =>
        [.. _measurements.Where(m => m.Instrument == instrument)];

    /// <summary>The sum of an instrument's measurements (a counter's total, an up-down counter's current value).</summary>
    public long Sum(string instrument, Func<RecordedMeasurement, bool>? filter = null) =>
        Measurements(instrument).Where(filter ?? (_ => true)).Sum(m => m.Value);

    public void Dispose() => _listener.Dispose();
}
