using System;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal;

internal static partial class ReusePortLog
{
    [LoggerMessage(1, LogLevel.Information, "Listening on {EndPoint} with {SocketCount} SO_REUSEPORT sockets ({InheritedCount} taken over from a running instance).", EventName = "Listening")]
    public static partial void Listening(ILogger logger, EndPoint endPoint, int socketCount, int inheritedCount);

    [LoggerMessage(2, LogLevel.Warning, "Accepting on socket {SocketIndex} of {EndPoint} failed with {SocketError}; that socket retries in {DelayMilliseconds} ms and the others go on.", EventName = "AcceptFailed")]
    public static partial void AcceptFailed(ILogger logger, int socketIndex, EndPoint endPoint, string socketError, int delayMilliseconds, Exception exception);

    [LoggerMessage(3, LogLevel.Debug, "A connection on socket {SocketIndex} of {EndPoint} was gone before it was accepted ({SocketError}).", EventName = "AcceptedConnectionGone")]
    public static partial void AcceptedConnectionGone(ILogger logger, int socketIndex, EndPoint endPoint, SocketError socketError);

    [LoggerMessage(4, LogLevel.Warning, "SO_REUSEPORT load balancing is not available on {Platform}: {EndPoint} is bound by Kestrel's stock sockets transport, with one socket and no port sharing.", EventName = "UnsupportedPlatform")]
    public static partial void UnsupportedPlatform(ILogger logger, string platform, EndPoint endPoint);

    [LoggerMessage(5, LogLevel.Information, "net.ipv4.tcp_migrate_req is {Value}: {Meaning}", EventName = "TcpMigrateRequest")]
    public static partial void TcpMigrateRequest(ILogger logger, string value, string meaning);

    [LoggerMessage(6, LogLevel.Information, "Took over {SocketCount} listening sockets of {EndPoint} from process {ProcessId}.", EventName = "HandoffReceived")]
    public static partial void HandoffReceived(ILogger logger, int socketCount, EndPoint endPoint, int processId);

    [LoggerMessage(7, LogLevel.Warning, "Could not take over the listening sockets of {EndPoint} from a running instance ({Reason}); opening new sockets on the port instead.", EventName = "HandoffFailed")]
    public static partial void HandoffFailed(ILogger logger, EndPoint endPoint, string reason);

    [LoggerMessage(8, LogLevel.Information, "Handed {SocketCount} listening sockets of {EndPoint} over to process {ProcessId}.", EventName = "HandoffSent")]
    public static partial void HandoffSent(ILogger logger, int socketCount, EndPoint endPoint, int processId);

    [LoggerMessage(9, LogLevel.Warning, "Refused a handoff peer (process {ProcessId}, user id {PeerUserId}) on {EndPoint}: only processes of user id {UserId} may share these sockets.", EventName = "HandoffPeerRefused")]
    public static partial void HandoffPeerRefused(ILogger logger, int processId, uint peerUserId, EndPoint endPoint, uint userId);

    [LoggerMessage(10, LogLevel.Debug, "Offering the listening sockets of {EndPoint} to the next instance at the abstract socket '{Name}'.", EventName = "RendezvousOwned")]
    public static partial void RendezvousOwned(ILogger logger, EndPoint endPoint, string name);

    [LoggerMessage(11, LogLevel.Warning, "The handoff rendezvous '{Name}' of {EndPoint} is held by process {ProcessId} of user id {PeerUserId}, not by this user: this instance cannot offer its sockets to a successor until it is released.", EventName = "RendezvousSquatted")]
    public static partial void RendezvousSquatted(ILogger logger, string name, EndPoint endPoint, int processId, uint peerUserId);

    [LoggerMessage(12, LogLevel.Information, "Stopped accepting on {ListenerCount} endpoints; draining {ConnectionCount} open connections for up to {DrainTimeout}.", EventName = "DrainStarted")]
    public static partial void DrainStarted(ILogger logger, int listenerCount, long connectionCount, TimeSpan drainTimeout);

    [LoggerMessage(13, LogLevel.Information, "Drain ended after {ElapsedMilliseconds} ms with {ConnectionCount} connections still open; Kestrel's shutdown closes them.", EventName = "DrainEnded")]
    public static partial void DrainEnded(ILogger logger, long elapsedMilliseconds, long connectionCount);

    [LoggerMessage(14, LogLevel.Warning, "SocketTransportOptions.CreateBoundListenSocket is customised, but SO_REUSEPORT must be set before bind: the custom callback is not used for IP endpoint {EndPoint}.", EventName = "CustomBindIgnored")]
    public static partial void CustomBindIgnored(ILogger logger, EndPoint endPoint);

    [LoggerMessage(15, LogLevel.Error, "Creating a connection for a socket accepted on socket {SocketIndex} of {EndPoint} failed; the connection was closed.", EventName = "ConnectionSetupFailed")]
    public static partial void ConnectionSetupFailed(ILogger logger, int socketIndex, EndPoint endPoint, Exception exception);

    [LoggerMessage(16, LogLevel.Warning, "The handoff rendezvous of {EndPoint} failed; retrying.", EventName = "RendezvousFailed")]
    public static partial void RendezvousFailed(ILogger logger, EndPoint endPoint, Exception exception);

    [LoggerMessage(17, LogLevel.Debug, "No running instance offers the sockets of {EndPoint}; opening new ones.", EventName = "HandoffNone")]
    public static partial void HandoffNone(ILogger logger, EndPoint endPoint);
}
