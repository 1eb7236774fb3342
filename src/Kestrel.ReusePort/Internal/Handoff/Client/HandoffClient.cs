using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Handoff.Protocol;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Posix;
using Kestrel.ReusePort.Internal.Rendezvous;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Handoff.Client;

/// <summary>
/// Asks a running instance of the same user for the listening sockets of an endpoint.
/// </summary>
internal static class HandoffClient
{
    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(20);

    // A first-release instance answers at once; a squatter of its abstract name must not hold a start up for longer.
    private static readonly TimeSpan s_legacyTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Takes the running instance's listening sockets for <paramref name="endpoint"/> over, keeping the connection to
    /// it open; or, when none answers, claims the place for this instance; or neither, when the running instance cannot
    /// be trusted or reached in time: then the caller opens its own sockets. <paramref name="legacy"/> is the first
    /// release's place, asked once when nobody answers at <paramref name="place"/>.
    /// </summary>
    public static async Task<HandoffAcquisition> AcquireAsync(
        IPEndPoint endpoint,
        RendezvousPlace place,
        RendezvousPlace? legacy,
        TimeSpan timeout,
        ILogger logger,
        ReusePortMetrics metrics,
        KeyValuePair<string, object?>[] endpointTags,
        CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        string? failure = null;
        string? errorType = null;
        var legacyAsked = false;

        while (true)
        {
            foreach (var candidate in place.FindRunningInstances())
            {
                var attempt = await TryCandidateAsync(candidate, endpoint, Remaining(deadline), logger, cancellationToken).ConfigureAwait(false);
                if (attempt.IsTakenOver)
                {
                    return TakenOver(attempt.Sockets, attempt.Predecessor, endpoint, started, logger, metrics, endpointTags);
                }

                failure ??= attempt.Failure;
                errorType ??= attempt.ErrorType;
            }

            if (failure is not null)
            {
                break;
            }

            if (!legacyAsked && legacy is not null)
            {
                legacyAsked = true;
                foreach (var candidate in legacy.FindRunningInstances())
                {
                    var remaining = Remaining(deadline);
                    var attempt = await TryCandidateAsync(candidate, endpoint, remaining < s_legacyTimeout ? remaining : s_legacyTimeout, logger, cancellationToken).ConfigureAwait(false);
                    if (attempt.IsTakenOver)
                    {
                        return TakenOver(attempt.Sockets, attempt.Predecessor, endpoint, started, logger, metrics, endpointTags);
                    }
                }
            }

            // Nobody answered. If the port's sockets are listening all the same, an instance holds them that is about to
            // listen at the place (a successor taking over from an instance that just left): ask again shortly, since
            // sockets of this instance's own would split the port into groups that no longer change hands together.
            // Otherwise claim the place before opening sockets; if someone else holds it (an instance starting at the
            // same moment), ask that one shortly instead.
            var lastChance = Remaining(deadline) <= s_retryDelay;
            if ((lastChance || !ProcessSockets.HasListeners(endpoint)) && place.TryListen() is { } claimed)
            {
                if (lastChance && ProcessSockets.HasListeners(endpoint))
                {
                    ReusePortLog.HandoffFailed(logger, endpoint, $"the port's sockets are held by an instance that did not offer them at {place.Description} within {timeout}");
                    metrics.HandoffCompleted(endpointTags, Stopwatch.GetElapsedTime(started), "failed", "timeout");
                }
                else
                {
                    ReusePortLog.HandoffNone(logger, endpoint, place.Description);
                    metrics.HandoffCompleted(endpointTags, Stopwatch.GetElapsedTime(started), "no_running_instance", errorType: null);
                }

                return new HandoffAcquisition([], null, claimed);
            }

            if (lastChance)
            {
                failure = $"{place.Description} is held by an instance that did not hand its sockets over within {timeout}";
                errorType = "timeout";
                break;
            }

            await Task.Delay(s_retryDelay, cancellationToken).ConfigureAwait(false);
        }

        ReusePortLog.HandoffFailed(logger, endpoint, failure);
        metrics.HandoffCompleted(endpointTags, Stopwatch.GetElapsedTime(started), "failed", errorType);
        return HandoffAcquisition.None;
    }

    private static HandoffAcquisition TakenOver(List<Socket> sockets, Predecessor predecessor, IPEndPoint endpoint, long started,
        ILogger logger, ReusePortMetrics metrics, KeyValuePair<string, object?>[] endpointTags)
    {
        ReusePortLog.HandoffReceived(logger, sockets.Count, endpoint, predecessor.ProcessId);
        metrics.SocketsHandedOver(endpointTags, sockets.Count, sent: false);
        metrics.HandoffCompleted(endpointTags, Stopwatch.GetElapsedTime(started), "taken_over", errorType: null);
        return new HandoffAcquisition(sockets, predecessor, null);
    }

    private static async Task<CandidateAnswer> TryCandidateAsync(
        RendezvousCandidate candidate, IPEndPoint endpoint, TimeSpan timeout, ILogger logger, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return CandidateAnswer.Failed("no time was left to ask the running instance", "timeout");
        }

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var keep = false;
        var descriptors = new List<int>();
        var sockets = new List<Socket>();
        try
        {
            try
            {
                await connection.ConnectAsync(candidate.EndPoint, timeoutSource.Token).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable or SocketError.ConnectionReset)
            {
                // Nobody listens (a socket file left by an instance that was killed, or none at all), or it is leaving.
                return CandidateAnswer.Absent;
            }

            var userId = NativeMethods.GetEffectiveUserId();
            var owner = PeerCredentials.Get(connection);
            if (owner.UserId != userId || (candidate.ProcessId is { } expected && owner.ProcessId != expected))
            {
                // The first release's abstract name can be taken by anyone; it is only asked in case an old instance
                // runs, so someone else holding it is no news.
                if (candidate.Version == HandoffProtocol.CurrentVersion)
                {
                    ReusePortLog.HandoffPeerRefused(logger, owner.ProcessId, owner.UserId, endpoint, userId);
                }
                else
                {
                    ReusePortLog.LegacyRendezvousRefused(logger, candidate.Description, owner.ProcessId, owner.UserId);
                }

                return CandidateAnswer.Failed($"the rendezvous {candidate.Description} is held by process {owner.ProcessId} of user id {owner.UserId}", "untrusted_peer");
            }

            var request = new byte[HandoffProtocol.MessageLength];
            HandoffProtocol.WriteRequest(request, candidate.Version, HandoffProtocol.TakeOver);
            await connection.SendAsync(request, SocketFlags.None, timeoutSource.Token).ConfigureAwait(false);

            // recvmsg has no async form in .NET; it waits with Poll, on a pool thread, within the deadline.
            var reply = new byte[HandoffProtocol.MessageLength];
            var received = await Task.Run(() => DescriptorPassing.Receive(connection, reply, descriptors, timeout), timeoutSource.Token).ConfigureAwait(false);

            // Wrap every descriptor first, so that each one is closed whatever happens next.
            foreach (var descriptor in descriptors)
            {
                sockets.Add(new Socket(new SafeSocketHandle(descriptor, ownsHandle: true)));
            }

            descriptors.Clear();

            if (received == 0 && sockets.Count == 0)
            {
                // It closed the connection without answering: it is leaving, and whoever holds the sockets next will
                // listen there shortly. Not a failure: the caller asks again.
                return CandidateAnswer.Absent;
            }

            if (received != reply.Length || !HandoffProtocol.TryReadReply(reply, candidate.Version, out var count) || count == 0 || count != sockets.Count)
            {
                throw new InvalidDataException("the instance sent an unexpected reply");
            }

            foreach (var socket in sockets)
            {
                Validate(socket, endpoint);
            }

            keep = true;
            return CandidateAnswer.TakenOver(sockets, new Predecessor(connection, owner.ProcessId, candidate.Version));
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or TimeoutException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            foreach (var descriptor in descriptors)
            {
                new SafeSocketHandle(descriptor, ownsHandle: true).Dispose();
            }

            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            if (e is SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown })
            {
                // It went away in the middle of the exchange: it is leaving, as above.
                return CandidateAnswer.Absent;
            }

            var reason = e is OperationCanceledException or TimeoutException
                ? $"no answer from {candidate.Description} within {timeout}"
                : $"{candidate.Description}: {e.Message}";
            return CandidateAnswer.Failed(reason, e is OperationCanceledException or TimeoutException ? "timeout" : e.GetType().Name);
        }
        finally
        {
            if (!keep)
            {
                connection.Dispose();
            }
        }
    }

    private static TimeSpan Remaining(long deadline) => Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);

    /// <summary>
    /// A handed-over descriptor is used only if it is what this endpoint would have bound itself: a listening TCP
    /// socket on the same address and port, in the same SO_REUSEPORT mode.
    /// </summary>
    private static void Validate(Socket socket, IPEndPoint endpoint)
    {
        if (socket.SocketType != SocketType.Stream || socket.ProtocolType != ProtocolType.Tcp)
        {
            throw new InvalidDataException("a handed-over descriptor is not a TCP socket");
        }

        if ((int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection)! == 0)
        {
            throw new InvalidDataException("a handed-over socket is not listening");
        }

        if (socket.LocalEndPoint is not IPEndPoint local || !local.Equals(endpoint))
        {
            throw new InvalidDataException($"a handed-over socket listens on {socket.LocalEndPoint}, not {endpoint}");
        }

        if (!ListenSocketBinder.HasReusePort(socket))
        {
            throw new InvalidDataException("a handed-over socket does not have SO_REUSEPORT set");
        }
    }
}
