namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>One measurement of a <c>Kestrel.ReusePort</c> instrument.</summary>
public sealed record RecordedMeasurement(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags)
{
    public object? Tag(string name) => Tags.TryGetValue(name, out var value) ? value : null;
}
