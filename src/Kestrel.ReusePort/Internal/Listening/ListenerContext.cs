using System;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Internal.Handoff.Server;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>What every listener of one transport factory shares.</summary>
internal sealed class ListenerContext
{
    public required ReusePortSocketTransportOptions Options { get; init; }

    public required SocketTransportOptions SocketOptions { get; init; }

    /// <summary>Kestrel's own connection logger, so that existing log filters apply to these connections.</summary>
    public required ILogger ConnectionLogger { get; init; }

    public required ILogger Logger { get; init; }

    public required ReusePortMetrics Metrics { get; init; }

    public required ConnectionTracker Tracker { get; init; }

    /// <summary>Where a stop request from an instance that took this one's sockets over goes.</summary>
    public required IStopRequestHandler StopRequests { get; init; }

    /// <summary>Called when an instance took an endpoint's sockets over, with that instance's pid.</summary>
    public required Action<int> HandedOver { get; init; }
}
