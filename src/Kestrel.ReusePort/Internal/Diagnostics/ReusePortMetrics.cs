using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Drain;

namespace Kestrel.ReusePort.Internal.Diagnostics;

/// <summary>
/// The meter <c>Kestrel.ReusePort</c>: how connections spread over the sockets of each endpoint, what fails, and how
/// each deploy went (handoff, warm-up, drain).
/// </summary>
/// <remarks>
/// Instruments are in the library's own namespace; attributes reuse the names and values of Kestrel's meter and of
/// the OpenTelemetry semantic conventions (<c>server.address</c>, <c>server.port</c>, <c>network.type</c>,
/// <c>network.transport</c>, <c>error.type</c>), so that dashboards built for Kestrel can join them.
/// </remarks>
internal sealed class ReusePortMetrics
{
    public const string MeterName = "Kestrel.ReusePort";

    public const string ServerAddressAttribute = "server.address";
    public const string ServerPortAttribute = "server.port";
    public const string NetworkTypeAttribute = "network.type";
    public const string NetworkTransportAttribute = "network.transport";
    public const string ErrorTypeAttribute = "error.type";
    public const string SocketIndexAttribute = "kestrel.reuseport.socket.index";
    public const string HandoffDirectionAttribute = "kestrel.reuseport.handoff.direction";
    public const string HandoffResultAttribute = "kestrel.reuseport.handoff.result";
    public const string DrainResultAttribute = "kestrel.reuseport.drain.result";
    public const string DrainOutcomeAttribute = "kestrel.reuseport.drain.outcome";

    // Deploy steps take from milliseconds (a handoff) to minutes (a drain that waits for idle clients).
    private static readonly IReadOnlyList<double> s_durationBuckets =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly Counter<long> _acceptedConnections;
    private readonly Counter<long> _acceptErrors;
    private readonly Counter<long> _handoffSockets;
    private readonly Histogram<double> _handoffDuration;
    private readonly Histogram<double> _warmupDuration;
    private readonly Histogram<double> _drainDuration;
    private readonly Counter<long> _drainConnections;

    /// <param name="meterFactory">Creates the meter; a standalone one without it.</param>
    /// <param name="observeListeningSockets">The listening sockets this process holds now, per endpoint.</param>
    public ReusePortMetrics(IMeterFactory? meterFactory, Func<IEnumerable<Measurement<long>>> observeListeningSockets)
    {
        var meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        var durationAdvice = new InstrumentAdvice<double> { HistogramBucketBoundaries = s_durationBuckets };

        _acceptedConnections = meter.CreateCounter<long>("kestrel.reuseport.accepted_connections", "{connection}",
            "Connections accepted from the port's shared sockets, by endpoint and by socket index within the endpoint's SO_REUSEPORT group.");
        _acceptErrors = meter.CreateCounter<long>("kestrel.reuseport.accept_errors", "{error}",
            "Failed accept calls, by endpoint, socket index and error.");
        // Observed rather than counted up and down: a collector that attaches after the sockets were opened (or a
        // dotnet-counters session started late) still reads the real number.
        meter.CreateObservableUpDownCounter("kestrel.reuseport.listening_sockets", observeListeningSockets, "{socket}",
            "Listening sockets this process holds, by endpoint.");
        _handoffSockets = meter.CreateCounter<long>("kestrel.reuseport.handoff.sockets", "{socket}",
            "Listening sockets handed to (sent) or taken from (received) another instance, by endpoint.");
        _handoffDuration = meter.CreateHistogram("kestrel.reuseport.handoff.duration", "s",
            "How long a starting instance took to take the listening sockets over from a running instance, or to find that it could not.",
            advice: durationAdvice);
        _warmupDuration = meter.CreateHistogram("kestrel.reuseport.warmup.duration", "s",
            "How long the warm-up requests of an endpoint took, before the instance began to accept on the port's sockets.",
            advice: durationAdvice);
        _drainDuration = meter.CreateHistogram("kestrel.reuseport.drain.duration", "s",
            "How long a stopping instance drained its connections, from the moment it stopped accepting.",
            advice: durationAdvice);
        _drainConnections = meter.CreateCounter<long>("kestrel.reuseport.drain.connections", "{connection}",
            "Connections open when a drain began, by how each one ended.");
    }

    /// <summary>
    /// The attributes of an endpoint, made once per listener so that counting an accepted connection allocates nothing.
    /// </summary>
    public static KeyValuePair<string, object?>[] EndpointTags(IPEndPoint endpoint) =>
    [
        new(ServerAddressAttribute, endpoint.Address.ToString()),
        new(ServerPortAttribute, endpoint.Port),
        new(NetworkTypeAttribute, endpoint.AddressFamily == AddressFamily.InterNetworkV6 ? "ipv6" : "ipv4"),
        new(NetworkTransportAttribute, "tcp"),
    ];

    /// <summary>The attributes of one socket of an endpoint's group.</summary>
    public static KeyValuePair<string, object?>[] SocketTags(KeyValuePair<string, object?>[] endpointTags, int socketIndex) =>
        [.. endpointTags, new(SocketIndexAttribute, socketIndex)];

    public void ConnectionAccepted(KeyValuePair<string, object?>[] socketTags)
    {
        if (_acceptedConnections.Enabled)
        {
            _acceptedConnections.Add(1, socketTags);
        }
    }

    public void AcceptFailed(KeyValuePair<string, object?>[] socketTags, SocketError error)
    {
        if (_acceptErrors.Enabled)
        {
            var tags = new TagList(socketTags) { { ErrorTypeAttribute, ErrorType(error) } };
            _acceptErrors.Add(1, tags);
        }
    }

    public void SocketsHandedOver(KeyValuePair<string, object?>[] endpointTags, int count, bool sent)
    {
        var tags = new TagList(endpointTags) { { HandoffDirectionAttribute, sent ? "sent" : "received" } };
        _handoffSockets.Add(count, tags);
    }

    /// <summary>Records a starting instance's handoff: <paramref name="result"/> is taken_over, no_running_instance or failed.</summary>
    public void HandoffCompleted(KeyValuePair<string, object?>[] endpointTags, TimeSpan elapsed, string result, string? errorType)
    {
        var tags = new TagList(endpointTags) { { HandoffResultAttribute, result } };
        if (errorType is not null)
        {
            tags.Add(ErrorTypeAttribute, errorType);
        }

        _handoffDuration.Record(elapsed.TotalSeconds, tags);
    }

    public void WarmupCompleted(KeyValuePair<string, object?>[] endpointTags, TimeSpan elapsed, string? errorType)
    {
        var tags = new TagList(endpointTags);
        if (errorType is not null)
        {
            tags.Add(ErrorTypeAttribute, errorType);
        }

        _warmupDuration.Record(elapsed.TotalSeconds, tags);
    }

    /// <summary>Records a drain: <paramref name="timedOut"/> when it reached its timeout with connections still open.</summary>
    public void DrainCompleted(TimeSpan elapsed, bool timedOut) =>
        _drainDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>(DrainResultAttribute, timedOut ? "timed_out" : "completed"));

    public void DrainConnectionsEnded(DrainOutcome outcome, long count)
    {
        if (count > 0)
        {
            _drainConnections.Add(count, new KeyValuePair<string, object?>(DrainOutcomeAttribute, outcome.ToAttributeValue()));
        }
    }

    /// <summary>The <c>error.type</c> value of a socket error: the conventions' snake_case name, e.g. <c>too_many_open_sockets</c>.</summary>
    public static string ErrorType(SocketError error) => error == SocketError.SocketError ? "_OTHER" : ToSnakeCase(error.ToString());

    private static string ToSnakeCase(string name)
    {
        var builder = new System.Text.StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLower(name[i], CultureInfo.InvariantCulture));
        }

        return builder.ToString();
    }
}
