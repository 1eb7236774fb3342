using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Handoff.Protocol;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Handoff.Client;

/// <summary>Asks the instances this one took its sockets from to drain and exit, once this one accepts on them (StopPredecessor).</summary>
internal static class PredecessorStop
{
    private static readonly TimeSpan s_stopRequestTimeout = TimeSpan.FromSeconds(5);

    /// <param name="predecessors">The instances the sockets came from.</param>
    /// <param name="startedAt">When this instance started, on the monotonic clock: only an instance that served before obeys.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="cancellationToken">The host's start token.</param>
    public static async Task RequestAsync(List<Predecessor> predecessors, long startedAt, ILogger logger, CancellationToken cancellationToken)
    {
        // One old instance may have handed over several endpoints: it is asked once per connection, and obeys once.
        foreach (var predecessor in predecessors)
        {
            try
            {
                switch (await predecessor.RequestStopAsync(startedAt, s_stopRequestTimeout, cancellationToken).ConfigureAwait(false))
                {
                    case HandoffProtocol.StopAccepted:
                        ReusePortLog.PredecessorStopped(logger, predecessor.ProcessId);
                        break;
                    case HandoffProtocol.StopRefused:
                        ReusePortLog.PredecessorNotStopped(logger, predecessor.ProcessId,
                            "it began serving only after this instance started, so it is a new instance too, started at the same time", null);
                        break;
                    default:
                        ReusePortLog.PredecessorNotStopped(logger, predecessor.ProcessId,
                            predecessor.Version < 2 ? "it runs a release that does not know this request" : "it closed the connection without an answer", null);
                        break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                ReusePortLog.PredecessorNotStopped(logger, predecessor.ProcessId, "it did not answer in time", e);
            }
        }

        if (predecessors.Count == 0)
        {
            ReusePortLog.NoPredecessorToStop(logger);
        }
    }
}
