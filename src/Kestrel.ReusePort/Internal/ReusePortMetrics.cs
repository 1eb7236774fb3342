using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// The meter <c>Kestrel.ReusePort</c>: how connections spread over the sockets of each endpoint, and what fails.
/// </summary>
internal sealed class ReusePortMetrics
{
    public const string MeterName = "Kestrel.ReusePort";
    public const string EndpointTag = "endpoint";
    public const string SocketTag = "socket";
    public const string ErrorTag = "error.type";
    public const string DirectionTag = "direction";

    private readonly Counter<long> _acceptedConnections;
    private readonly Counter<long> _acceptErrors;
    private readonly UpDownCounter<long> _listeningSockets;
    private readonly Counter<long> _handoffs;

    public ReusePortMetrics(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _acceptedConnections = meter.CreateCounter<long>("kestrel.reuseport.accepted_connections", "{connection}",
            "Connections accepted, by endpoint and by socket index within the endpoint's SO_REUSEPORT group.");
        _acceptErrors = meter.CreateCounter<long>("kestrel.reuseport.accept_errors", "{error}",
            "Failed accept calls, by endpoint, socket index and socket error.");
        _listeningSockets = meter.CreateUpDownCounter<long>("kestrel.reuseport.listening_sockets", "{socket}",
            "Listening sockets this process holds, by endpoint.");
        _handoffs = meter.CreateCounter<long>("kestrel.reuseport.handoffs", "{socket}",
            "Listening sockets handed to (sent) or taken from (received) another instance, by endpoint.");
    }

    /// <summary>Tags for one socket, made once so that counting an accepted connection allocates nothing.</summary>
    public static KeyValuePair<string, object?>[] SocketTags(string endpoint, int socketIndex) =>
        [new(EndpointTag, endpoint), new(SocketTag, socketIndex)];

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
            var tags = new TagList(socketTags) { { ErrorTag, error.ToString() } };
            _acceptErrors.Add(1, tags);
        }
    }

    public void SocketsChanged(string endpoint, int delta) =>
        _listeningSockets.Add(delta, new KeyValuePair<string, object?>(EndpointTag, endpoint));

    public void SocketsHandedOver(string endpoint, int count, bool sent) =>
        _handoffs.Add(count, new KeyValuePair<string, object?>(EndpointTag, endpoint), new KeyValuePair<string, object?>(DirectionTag, sent ? "sent" : "received"));
}
