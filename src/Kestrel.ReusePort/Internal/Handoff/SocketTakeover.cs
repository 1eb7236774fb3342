using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Handoff.Client;
using Kestrel.ReusePort.Internal.Handoff.Server;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Rendezvous;

namespace Kestrel.ReusePort.Internal.Handoff;

/// <summary>
/// Where an endpoint's listening sockets come from when it begins to accept: the running instance's, taken over at the
/// rendezvous, made up to ListenerCount with this instance's own bound sockets; and the handoff server that offers them
/// to the next instance.
/// </summary>
internal static class SocketTakeover
{
    /// <summary>
    /// Returns the endpoint's listening sockets; <paramref name="reserved"/> (bound, not listening) is emptied: its
    /// sockets listen or are closed. Without a rendezvous, the sockets are this instance's own and no server offers them.
    /// </summary>
    public static async Task<TakenOverSockets> AcquireAsync(
        IPEndPoint endpoint,
        List<Socket> reserved,
        RendezvousLocation? rendezvous,
        ListenerContext context,
        Action<int> handedOver,
        KeyValuePair<string, object?>[] endpointTags,
        CancellationToken cancellationToken)
    {
        var place = rendezvous?.PlaceFor(endpoint);
        var acquired = HandoffAcquisition.None;
        var sockets = new List<Socket>();
        try
        {
            if (place is not null)
            {
                acquired = await HandoffClient.AcquireAsync(endpoint, place, rendezvous!.LegacyPlaceFor(endpoint),
                    context.Options.HandoffTimeout, context.Logger, context.Metrics, endpointTags, cancellationToken).ConfigureAwait(false);
                sockets.AddRange(acquired.Sockets);
            }

            var inherited = sockets.Count;
            var backlog = context.SocketOptions.Backlog;

            // Sockets of an older instance are listening already; listening again only brings their backlog in line.
            foreach (var socket in sockets)
            {
                socket.Listen(backlog);
            }

            // This instance's own sockets make up what the older one did not have; the others are closed unused.
            var missing = context.Options.ListenerCount - inherited;
            for (var i = 0; i < reserved.Count; i++)
            {
                if (i < missing)
                {
                    reserved[i].Listen(backlog);
                    sockets.Add(reserved[i]);
                }
                else
                {
                    reserved[i].Dispose();
                }
            }

            reserved.Clear();
            foreach (var socket in sockets)
            {
                ListenSocketBinder.ApplyTuning(socket, context.Options);
            }

            var server = place is null ? null
                : new HandoffServer(endpoint, place, sockets, acquired.ClaimedPlace, context.StopRequests, handedOver, context.Logger, context.Metrics, endpointTags);
            return new TakenOverSockets(sockets, inherited, acquired.Predecessor, server);
        }
        catch
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            acquired.ClaimedPlace?.Dispose();
            place?.Dispose();
            acquired.Predecessor?.Dispose();
            throw;
        }
    }
}
