using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// The instruments of the <c>Kestrel.ReusePort</c> meter, read with <see cref="MetricCollector{T}"/> scoped to one app's
/// meter factory, so that servers of other tests running in parallel in this process do not count.
/// </summary>
public static class Instruments
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

    /// <summary>Collects a counter or up-down counter of the app whose <c>IMeterFactory</c> is <paramref name="meterScope"/>.</summary>
    public static MetricCollector<long> Counter(object meterScope, string instrument) => new(meterScope, MeterName, instrument);

    /// <summary>Collects a histogram of the app whose <c>IMeterFactory</c> is <paramref name="meterScope"/>.</summary>
    public static MetricCollector<double> Histogram(object meterScope, string instrument) => new(meterScope, MeterName, instrument);

    /// <summary>The sum of the measurements so far, of those with <paramref name="tag"/> = <paramref name="value"/> if given.</summary>
    public static long Sum(this MetricCollector<long> collector, string? tag = null, object? value = null) =>
        collector.GetMeasurementSnapshot().Where(m => tag is null || Equals(m.Tags.GetValueOrDefault(tag), value)).Sum(m => m.Value);

    /// <summary>Asks an observable instrument for its values now, and returns only those.</summary>
    public static IReadOnlyList<CollectedMeasurement<long>> Observe(this MetricCollector<long> collector)
    {
        collector.Clear();
        collector.RecordObservableInstruments();
        return collector.GetMeasurementSnapshot();
    }

    public static object? Tag<T>(this CollectedMeasurement<T> measurement, string name)
        where T : struct => measurement.Tags.GetValueOrDefault(name);
}
