namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// One data point of an OTLP metrics export: its metric's name, unit and kind (<c>sum</c>, <c>gauge</c>,
/// <c>histogram</c>), its attributes, and its value (a sum's or gauge's value; a histogram's sum, with
/// <see cref="Count"/> its number of measurements).
/// </summary>
public sealed record OtlpPoint(string Scope, string Metric, string Unit, string Kind, IReadOnlyDictionary<string, object> Attributes, double Value, ulong Count)
{
    public object? Attribute(string key) => Attributes.TryGetValue(key, out var value) ? value : null;

    public override string ToString() =>
        $"{Metric} [{Kind}, {Unit}] {{{string.Join(", ", Attributes.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}={a.Value}"))}}} " +
        (Kind == "histogram" ? $"count={Count} sum={Value}" : $"value={Value}");
}
