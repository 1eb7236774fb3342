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
/// began, bounded by <see cref="GoAwayGrace.Maximum"/>: a long one may end when it ends), and until the drain holds as
/// many new streams as the client ever kept in flight on the connection. A quiet grace alone is a guess at how soon the
/// client reads: on a loaded host a client was seen to sleep past 20 ms and read the response and the GOAWAY together,
/// losing a stream in about one run of the HTTP/2 deploy tests in three. A client that keeps its streams in flight (h2load,
/// a pool of callers) opens the next as soon as it read a response, so once all of them are back it has read every
/// response; counting streams opened against streams ended during the drain is not enough, since a stream the client
/// opened before the drain (for a response that ended before it) arrives during it. A client that does not come back
/// to its busiest (it had nothing more to ask) gets its GOAWAY at <see cref="GoAwayGrace.Maximum"/>, which delays only
/// the end of its connection's drain.
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
            if ((quiet >= grace && connection.HoldsAllItsClientKeepsInFlight) || left <= TimeSpan.Zero)
            {
                break;
            }

            // While a response is still being made, or the client has yet to open its next streams, look again well
            // within a grace; otherwise when the grace since the last response is over.
            var wait = quiet > TimeSpan.Zero && quiet < grace ? grace - quiet : grace / 4;
            await Task.Delay(wait < left ? wait : left).ConfigureAwait(false);
        }

        // Kestrel answers with GOAWAY and lets the streams in flight finish.
        lifetime?.RequestClose();
        await Task.Delay(grace).ConfigureAwait(false);
    }
}
