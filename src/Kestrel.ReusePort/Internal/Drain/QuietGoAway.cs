using System;
using System.Diagnostics;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections.Features;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// Sends a draining HTTP/2 (or HTTP/3) connection its GOAWAY on a quiet connection: no response ends shortly before it,
/// and no stream is let through shortly after it. The connection's drained streams wait for it.
/// </summary>
/// <remarks>
/// <para>
/// A client that opens its next stream as soon as a response ends, as h2load does, has queued that stream when a GOAWAY
/// read in the same batch as the response forbids sending it; the stream is lost, though it never reached the server.
/// So the GOAWAY waits until no response has ended for one grace (responses of streams let through before the drain
/// began, bounded by <see cref="GoAwayGrace.Maximum"/>: a long one may end when it ends), and until the client opened
/// as many streams during the drain as ended during it. A quiet grace alone is a guess at how soon the client reads: on
/// a loaded host a client was seen to sleep past 20 ms and read the response and the GOAWAY together, losing a stream
/// in about one run of the HTTP/2 deploy tests in three. The streams it opens are evidence that it read every response;
/// a client that does not open one again (it had nothing more to ask) gets its GOAWAY at
/// <see cref="GoAwayGrace.Maximum"/>, which delays only the end of its connection's drain.
/// </para>
/// <para>
/// Kestrel fixes the connection's last stream id, in a final GOAWAY, as soon as no stream is active; a stream the client
/// opened before it saw the first GOAWAY would then be refused. So the drained streams stay active for one more grace,
/// enough for the client to see the GOAWAY, before they run.
/// </para>
/// </remarks>
internal static class QuietGoAway
{
    public static async Task SendAsync(TrackedConnection connection, IConnectionLifetimeNotificationFeature? lifetime, TimeSpan grace)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var quiet = connection.ExecutingRequests > 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(connection.LastRequestEnded);
            var left = GoAwayGrace.Maximum - Stopwatch.GetElapsedTime(started);
            if ((quiet >= grace && connection.OpenedAsManyAsEnded) || left <= TimeSpan.Zero)
            {
                break;
            }

            // While a response is still being made, or while a quiet connection waits for the client's next stream, look
            // again well within a grace (grace - quiet is negative then, which Task.Delay refuses).
            var wait = connection.ExecutingRequests > 0 || quiet >= grace ? grace / 4 : grace - quiet;
            await Task.Delay(wait < left ? wait : left).ConfigureAwait(false);
        }

        // Kestrel answers with GOAWAY and lets the streams in flight finish.
        lifetime?.RequestClose();
        await Task.Delay(grace).ConfigureAwait(false);
    }
}
