using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// An OTLP/HTTP (protobuf) metrics receiver on a free loopback port: every instance pushes to a path of its own,
/// <c>/{instance}/v1/metrics</c>, so that exports of several processes are told apart; each export is decoded and kept.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, ConcurrentQueue<IReadOnlyList<OtlpPoint>>> _exports = new(StringComparer.Ordinal);

    private OtlpReceiver(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public static async Task<OtlpReceiver> StartAsync()
    {
        var port = PortAllocator.GetFreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var receiver = new OtlpReceiver(app, port);
        app.MapPost("/{instance}/v1/metrics", async (string instance, HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            receiver._exports.GetOrAdd(instance, _ => new()).Enqueue(OtlpMetricsDecoder.Decode(body.ToArray()));
            // An empty ExportMetricsServiceResponse: everything accepted.
            return Results.Bytes([], "application/x-protobuf");
        });
        await app.StartAsync();
        return receiver;
    }

    /// <summary>The URL that <paramref name="instance"/> exports to (OTLP/HTTP takes the whole metrics URL).</summary>
    public string Endpoint(string instance) => $"http://127.0.0.1:{Port}/{instance}/v1/metrics";

    /// <summary>How many exports <paramref name="instance"/> made.</summary>
    public int ExportCount(string instance) => _exports.TryGetValue(instance, out var exports) ? exports.Count : 0;

    /// <summary>
    /// The points of <paramref name="instance"/>'s latest export that has <paramref name="metric"/> (cumulative
    /// temporality: the latest holds the totals).
    /// </summary>
    public IReadOnlyList<OtlpPoint> Latest(string instance, string metric) =>
        _exports.TryGetValue(instance, out var exports)
            ? exports.Reverse().Select(e => e.Where(p => p.Metric == metric).ToList()).FirstOrDefault(p => p.Count > 0) ?? []
            : [];

    /// <summary>Every point of <paramref name="instance"/>'s latest export, for messages.</summary>
    public string Describe(string instance) =>
        _exports.TryGetValue(instance, out var exports) && !exports.IsEmpty
            ? $"{exports.Count} exports from {instance}; the latest:\n  " + string.Join("\n  ", exports.Last())
            : $"no export from {instance}";

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
