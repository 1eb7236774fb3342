using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

/// <summary>
/// OpenTelemetry for the sample, off unless configured: <c>--Telemetry:Prometheus=true</c> serves the meters at
/// <c>/metrics</c>, <c>--Telemetry:Otlp:Endpoint=URL</c> pushes them over OTLP (<c>--Telemetry:Otlp:Protocol</c>:
/// <c>grpc</c>, the default, or <c>http/protobuf</c>, whose URL is the whole metrics URL, e.g.
/// <c>http://collector:4318/v1/metrics</c>). The OTLP exporter also exports once more when the host stops, so a
/// draining instance's last measurements reach the collector before the process exits.
/// </summary>
internal static class Telemetry
{
    /// <summary>The meters exported: this library's and Kestrel's own.</summary>
    public static readonly string[] Meters = ["Kestrel.ReusePort", "Microsoft.AspNetCore.Server.Kestrel"];

    /// <summary>Whether the configuration turns any exporter on.</summary>
    public static bool IsEnabled(IConfiguration configuration) =>
        configuration.GetValue<bool>("Telemetry:Prometheus") || !string.IsNullOrEmpty(configuration["Telemetry:Otlp:Endpoint"]);

    // Kept out of Program's Main, so that an app started without telemetry does not even load OpenTelemetry's assemblies.
    public static void AddTelemetry(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        builder.Services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.AddMeter(Meters);
            if (configuration.GetValue<bool>("Telemetry:Prometheus"))
            {
                metrics.AddPrometheusExporter();
            }

            if (configuration["Telemetry:Otlp:Endpoint"] is { Length: > 0 } endpoint)
            {
                metrics.AddOtlpExporter((exporter, reader) =>
                {
                    exporter.Endpoint = new Uri(endpoint);
                    exporter.Protocol = configuration["Telemetry:Otlp:Protocol"] == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                    if (configuration.GetValue<int?>("Telemetry:Otlp:ExportIntervalMilliseconds") is { } interval)
                    {
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = interval;
                    }
                });
            }
        });
    }

    public static void MapTelemetry(this WebApplication app)
    {
        if (app.Configuration.GetValue<bool>("Telemetry:Prometheus"))
        {
            app.MapPrometheusScrapingEndpoint();
        }
    }
}
