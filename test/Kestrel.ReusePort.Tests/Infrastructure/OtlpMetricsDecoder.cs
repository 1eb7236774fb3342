using Google.Protobuf;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Reads the data points out of an OTLP <c>ExportMetricsServiceRequest</c> (opentelemetry/proto/metrics/v1), by field
/// number, with Google.Protobuf's wire reader: the generated OTLP types are not on the package feed, and the test
/// needs only names, units, attributes and values. Fields it does not need are skipped.
/// </summary>
public static class OtlpMetricsDecoder
{
    public static IReadOnlyList<OtlpPoint> Decode(byte[] request)
    {
        var points = new List<OtlpPoint>();
        // ExportMetricsServiceRequest: 1 resource_metrics. ResourceMetrics: 2 scope_metrics.
        foreach (var resourceMetrics in Messages(request, 1))
        {
            foreach (var scopeMetrics in Messages(resourceMetrics, 2))
            {
                // ScopeMetrics: 1 scope (InstrumentationScope: 1 name), 2 metrics.
                var scope = Messages(scopeMetrics, 1).Select(s => Strings(s, 1).FirstOrDefault()).FirstOrDefault() ?? "";
                foreach (var metric in Messages(scopeMetrics, 2))
                {
                    ReadMetric(scope, metric, points);
                }
            }
        }

        return points;
    }

    private static void ReadMetric(string scope, byte[] metric, List<OtlpPoint> points)
    {
        // Metric: 1 name, 3 unit, 5 gauge, 7 sum, 9 histogram; each of those: 1 data_points.
        var name = Strings(metric, 1).FirstOrDefault() ?? "";
        var unit = Strings(metric, 3).FirstOrDefault() ?? "";
        foreach (var (field, kind) in new[] { (5, "gauge"), (7, "sum"), (9, "histogram") })
        {
            foreach (var data in Messages(metric, field))
            {
                foreach (var point in Messages(data, 1))
                {
                    points.Add(kind == "histogram" ? ReadHistogramPoint(scope, name, unit, point) : ReadNumberPoint(scope, name, unit, kind, point));
                }
            }
        }
    }

    // NumberDataPoint: 7 attributes, 4 as_double, 6 as_int (sfixed64).
    private static OtlpPoint ReadNumberPoint(string scope, string name, string unit, string kind, byte[] point)
    {
        double value = 0;
        var input = new CodedInputStream(point);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 4: value = input.ReadDouble(); break;
                case 6: value = input.ReadSFixed64(); break;
                default: input.SkipLastField(); break;
            }
        }

        return new OtlpPoint(scope, name, unit, kind, Attributes(point, 7), value, 0);
    }

    // HistogramDataPoint: 9 attributes, 4 count (fixed64), 5 sum (double).
    private static OtlpPoint ReadHistogramPoint(string scope, string name, string unit, byte[] point)
    {
        double sum = 0;
        ulong count = 0;
        var input = new CodedInputStream(point);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 4: count = input.ReadFixed64(); break;
                case 5: sum = input.ReadDouble(); break;
                default: input.SkipLastField(); break;
            }
        }

        return new OtlpPoint(scope, name, unit, "histogram", Attributes(point, 9), sum, count);
    }

    // KeyValue: 1 key, 2 value (AnyValue: 1 string_value, 2 bool_value, 3 int_value, 4 double_value).
    private static Dictionary<string, object> Attributes(byte[] message, int field)
    {
        var attributes = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var keyValue in Messages(message, field))
        {
            var key = Strings(keyValue, 1).FirstOrDefault() ?? "";
            object value = "";
            foreach (var anyValue in Messages(keyValue, 2))
            {
                var input = new CodedInputStream(anyValue);
                uint tag;
                while ((tag = input.ReadTag()) != 0)
                {
                    switch (WireFormat.GetTagFieldNumber(tag))
                    {
                        case 1: value = input.ReadString(); break;
                        case 2: value = input.ReadBool(); break;
                        case 3: value = input.ReadInt64(); break;
                        case 4: value = input.ReadDouble(); break;
                        default: input.SkipLastField(); break;
                    }
                }
            }

            attributes[key] = value;
        }

        return attributes;
    }

    private static IEnumerable<byte[]> Messages(byte[] message, int field) => LengthDelimited(message, field).Select(b => b.ToByteArray());

    private static IEnumerable<string> Strings(byte[] message, int field) => LengthDelimited(message, field).Select(b => b.ToStringUtf8());

    private static List<ByteString> LengthDelimited(byte[] message, int field)
    {
        var values = new List<ByteString>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == field && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                values.Add(input.ReadBytes());
            }
            else
            {
                input.SkipLastField();
            }
        }

        return values;
    }
}
