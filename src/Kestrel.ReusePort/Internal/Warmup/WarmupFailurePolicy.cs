using System.Collections.Generic;
using System.Linq;
using System.Net;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Posix;
using Kestrel.ReusePort.Internal.Readiness;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Warmup;

/// <summary>
/// What an instance whose warm-up failed does: a broken release must not take the port from a working one. With a
/// running instance to replace, it leaves the port alone and its start fails; on a first start, or with
/// <see cref="ReusePortWarmupOptions.ServeOnFailure"/>, it serves anyway, and says so.
/// </summary>
/// <remarks>
/// A running instance is one whose sockets listen on one of this instance's endpoints, read from /proc/net/tcp: that
/// covers an instance offering its sockets at the rendezvous and, with SocketHandoff off, one that shares the port.
/// Nothing is asked of it, so that its rendezvous and its clients see nothing of a release that never takes over.
/// This instance's own sockets are bound but not listening yet, so they are not counted.
/// </remarks>
internal static class WarmupFailurePolicy
{
    /// <summary>Returns when the instance may take the port; throws <see cref="ReusePortWarmupFailedException"/> when it must not.</summary>
    public static void Apply(
        IReadOnlyList<IPEndPoint> failed,
        IEnumerable<IPEndPoint> endpoints,
        ReusePortWarmupOptions options,
        ILogger logger,
        SystemdNotifier notifier)
    {
        if (failed.Count == 0)
        {
            return;
        }

        var failedList = string.Join(", ", failed);
        var served = endpoints.Where(ProcessSockets.HasListeners).ToList();
        if (served.Count == 0)
        {
            ReusePortLog.WarmupFailedFirstStart(logger, failedList);
            return;
        }

        var servedList = string.Join(", ", served);
        if (options.ServeOnFailure)
        {
            ReusePortLog.WarmupFailedServingAnyway(logger, failedList, servedList);
            return;
        }

        ReusePortLog.WarmupFailedPortLeft(logger, failedList, servedList);

        // systemd hears why before it sees the process exit without READY=1, and marks the start failed.
        notifier.Status($"Warm-up failed on {failedList}: not taking {servedList} from the running instance; exiting");
        throw new ReusePortWarmupFailedException(
            $"The warm-up failed on {failedList} while a running instance serves {servedList}: this instance did not take the port, " +
            $"and the running instance goes on serving. Set ReusePort:Warmup:ServeOnFailure=true to take over all the same.");
    }
}
