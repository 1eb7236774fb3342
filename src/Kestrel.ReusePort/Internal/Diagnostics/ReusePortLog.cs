using System;
using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Listening;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Diagnostics;

/// <summary>Every message of the <c>Kestrel.ReusePort</c> category, each with its event id.</summary>
internal static partial class ReusePortLog
{
    /// <summary>The category of every message here.</summary>
    public const string CategoryName = "Kestrel.ReusePort";

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

    [LoggerMessage(10, LogLevel.Information, "Offering the listening sockets of {EndPoint} to the next instance at '{Place}'.", EventName = "RendezvousOwned")]
    public static partial void RendezvousOwned(ILogger logger, EndPoint endPoint, string place);

    [LoggerMessage(11, LogLevel.Warning, "The handoff rendezvous '{Place}' of {EndPoint} is held by process {ProcessId} of user id {PeerUserId}, not by this user: this instance cannot offer its sockets to a successor until it is released.", EventName = "RendezvousSquatted")]
    public static partial void RendezvousSquatted(ILogger logger, string place, EndPoint endPoint, int processId, uint peerUserId);

    [LoggerMessage(12, LogLevel.Information, "Stopped accepting on {ListenerCount} endpoints; draining {ConnectionCount} open connections ({BusyCount} with a request in flight) for up to {DrainTimeout}.", EventName = "DrainStarted")]
    public static partial void DrainStarted(ILogger logger, int listenerCount, long connectionCount, long busyCount, TimeSpan drainTimeout);

    [LoggerMessage(13, LogLevel.Information, "Drain ended after {ElapsedMilliseconds} ms with 0 connections still open: {ConnectionClose} answered with Connection: close, {GoAway} sent GOAWAY, {ClientClosed} closed by their clients.", EventName = "DrainEnded")]
    public static partial void DrainEnded(ILogger logger, long elapsedMilliseconds, long connectionClose, long goAway, long clientClosed);

    [LoggerMessage(14, LogLevel.Warning, "SocketTransportOptions.CreateBoundListenSocket is customised, but SO_REUSEPORT must be set before bind: the custom callback is not used for IP endpoint {EndPoint}.", EventName = "CustomBindIgnored")]
    public static partial void CustomBindIgnored(ILogger logger, EndPoint endPoint);

    [LoggerMessage(15, LogLevel.Error, "Creating a connection for a socket accepted on socket {SocketIndex} of {EndPoint} failed; the connection was closed.", EventName = "ConnectionSetupFailed")]
    public static partial void ConnectionSetupFailed(ILogger logger, int socketIndex, EndPoint endPoint, Exception exception);

    [LoggerMessage(16, LogLevel.Warning, "The handoff rendezvous '{Place}' of {EndPoint} failed; retrying.", EventName = "RendezvousFailed")]
    public static partial void RendezvousFailed(ILogger logger, EndPoint endPoint, string place, Exception exception);

    [LoggerMessage(17, LogLevel.Debug, "No running instance offers the sockets of {EndPoint} at '{Place}'; opening new ones.", EventName = "HandoffNone")]
    public static partial void HandoffNone(ILogger logger, EndPoint endPoint, string place);

    [LoggerMessage(18, LogLevel.Warning, "Drain reached its timeout (DrainTimeout) after {ElapsedMilliseconds} ms with {ConnectionCount} connections still open ({BusyCount} with a request in flight): Kestrel's shutdown closes the idle ones now and ends the others at HostOptions.ShutdownTimeout.", EventName = "DrainBoundReached")]
    public static partial void DrainTimeoutReached(ILogger logger, long elapsedMilliseconds, long connectionCount, long busyCount);

    [LoggerMessage(19, LogLevel.Information, "Warmed up {EndPoint} in {ElapsedMilliseconds} ms: {Summary}.", EventName = "WarmedUp")]
    public static partial void WarmedUp(ILogger logger, EndPoint endPoint, long elapsedMilliseconds, string summary);

    [LoggerMessage(20, LogLevel.Warning, "The warm-up of {EndPoint} did not succeed after {ElapsedMilliseconds} ms ({Summary}).", EventName = "WarmupFailed")]
    public static partial void WarmupFailed(ILogger logger, EndPoint endPoint, long elapsedMilliseconds, string summary);

    [LoggerMessage(21, LogLevel.Warning, "The handoff rendezvous '{Place}' of {EndPoint} was removed or replaced; offering the sockets there again.", EventName = "RendezvousLost")]
    public static partial void RendezvousLost(ILogger logger, string place, EndPoint endPoint);

    [LoggerMessage(22, LogLevel.Information, "Process {ProcessId} took over the sockets of {EndPoint} and asked this instance to drain and exit.", EventName = "StopRequested")]
    public static partial void StopRequested(ILogger logger, int processId, EndPoint endPoint);

    [LoggerMessage(23, LogLevel.Information, "Asked process {ProcessId}, which handed its sockets over, to drain and exit.", EventName = "PredecessorStopped")]
    public static partial void PredecessorStopped(ILogger logger, int processId);

    [LoggerMessage(24, LogLevel.Warning, "Could not ask process {ProcessId} to drain and exit: {Reason}. It keeps running; stop it yourself.", EventName = "PredecessorNotStopped")]
    public static partial void PredecessorNotStopped(ILogger logger, int processId, string reason, Exception? exception);

    [LoggerMessage(25, LogLevel.Warning, "StopPredecessor is on, but no running instance handed its sockets over, so none was asked to stop.", EventName = "NoPredecessorToStop")]
    public static partial void NoPredecessorToStop(ILogger logger);

    [LoggerMessage(26, LogLevel.Information, "Socket handoff meets on fixed abstract Unix socket names (AbstractRendezvous): a process of another user can take such a name first and turn the handoff off.", EventName = "AbstractRendezvousChosen")]
    public static partial void AbstractRendezvousChosen(ILogger logger);

    [LoggerMessage(27, LogLevel.Error, "The handoff rendezvous directory '{Path}' (from {Source}) cannot be used: {Reason}. Socket handoff is off, so stopping an instance resets the connections queued on its sockets. Fix the directory, or set ReusePort:RendezvousDirectory to one that only this user can write to.", EventName = "RendezvousDirectoryRefused")]
    public static partial void RendezvousDirectoryRefused(ILogger logger, string path, string source, string reason);

    [LoggerMessage(28, LogLevel.Warning, "Could not notify the service manager at NOTIFY_SOCKET '{NotifySocket}'.", EventName = "NotifyFailed")]
    public static partial void NotifyFailed(ILogger logger, string notifySocket, Exception exception);

    [LoggerMessage(29, LogLevel.Error, "A callback registered on IReusePortLifetime.Draining threw; the drain goes on.", EventName = "DrainCallbackFailed")]
    public static partial void DrainCallbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(30, LogLevel.Debug, "The first release's rendezvous '{Place}' is held by process {ProcessId} of user id {PeerUserId}, not by an older instance of this app; it is ignored.", EventName = "LegacyRendezvousRefused")]
    public static partial void LegacyRendezvousRefused(ILogger logger, string place, int processId, uint peerUserId);

    [LoggerMessage(31, LogLevel.Information, "Process {ProcessId} took over the sockets of {EndPoint} and asked this instance to drain and exit, but this instance began serving only after that process started: both are new, so this one keeps running.", EventName = "StopRefused")]
    public static partial void StopRefused(ILogger logger, int processId, EndPoint endPoint);

    [LoggerMessage(53, LogLevel.Warning, "This Kestrel has no internal constructor for SocketConnectionFactoryOptions: the connections of {EndPoint} buffer in MemoryPool<byte>.Shared, not in Kestrel's own memory pool.", EventName = "ConnectionOptionsWithoutKestrelsPool")]
    public static partial void ConnectionOptionsWithoutKestrelsPool(ILogger logger, EndPoint endPoint);

    [LoggerMessage(32, LogLevel.Warning, "After the drain timeout, Kestrel's shutdown closed {ClosedIdle} idle connections, {Finished} finished their last request, and {Aborted} were aborted at HostOptions.ShutdownTimeout; before the bound {ConnectionClose} were answered with Connection: close, {GoAway} sent GOAWAY and {ClientClosed} closed by their clients.", EventName = "ShutdownAfterDrain")]
    public static partial void ShutdownAfterDrain(ILogger logger, long closedIdle, long finished, long aborted, long connectionClose, long goAway, long clientClosed);

    [LoggerMessage(33, LogLevel.Error, "The warm-up failed on {FailedEndPoints} while a running instance serves {ServedEndPoints}: this instance does not take the port, and its start fails. The running instance goes on serving. Set ReusePort:Warmup:ServeOnFailure=true to take over all the same.", EventName = "WarmupFailedPortLeft")]
    public static partial void WarmupFailedPortLeft(ILogger logger, string failedEndPoints, string servedEndPoints);

    [LoggerMessage(34, LogLevel.Warning, "The warm-up failed on {FailedEndPoints}, but no running instance serves this instance's endpoints (a first start): accepting on the port anyway.", EventName = "WarmupFailedFirstStart")]
    public static partial void WarmupFailedFirstStart(ILogger logger, string failedEndPoints);

    [LoggerMessage(35, LogLevel.Warning, "The warm-up failed on {FailedEndPoints}, and Warmup.ServeOnFailure is set: taking over {ServedEndPoints} from the running instance anyway.", EventName = "WarmupFailedServingAnyway")]
    public static partial void WarmupFailedServingAnyway(ILogger logger, string failedEndPoints, string servedEndPoints);

    [LoggerMessage(37, LogLevel.Information, "Stopping with no successor holding this instance's sockets: accepting for {DelayMilliseconds} ms more (RemovalDelay) while load balancers drop it; every response meanwhile asks its client to reconnect.", EventName = "RemovalDelayStarted")]
    public static partial void RemovalDelayStarted(ILogger logger, long delayMilliseconds);

    [LoggerMessage(38, LogLevel.Information, "No removal delay: {Reason}; accepting stops now.", EventName = "RemovalDelaySkipped")]
    public static partial void RemovalDelaySkipped(ILogger logger, string reason);

    [LoggerMessage(39, LogLevel.Information, "Process {ProcessId} took over this instance's sockets {ElapsedMilliseconds} ms into the removal delay: it serves them now, so accepting stops at once; {AcceptedCount} connections were accepted during the delay.", EventName = "RemovalDelaySuccessor")]
    public static partial void RemovalDelaySuccessor(ILogger logger, int processId, long elapsedMilliseconds, long acceptedCount);

    [LoggerMessage(40, LogLevel.Information, "Removal delay ended after {ElapsedMilliseconds} ms: {AcceptedCount} connections were accepted during it, the last {LastAcceptedMilliseconds} ms into it (-1: none). Accepting stops now.", EventName = "RemovalDelayEnded")]
    public static partial void RemovalDelayEnded(ILogger logger, long elapsedMilliseconds, long acceptedCount, long lastAcceptedMilliseconds);

    [LoggerMessage(42, LogLevel.Warning, "The process is out of descriptors (limit {Limit}): a reserve of {ReserveSize} is left free for the runtime, and accepting pauses on every socket; new connections wait in the listen queues until descriptors free up.", EventName = "DescriptorsExhausted")]
    public static partial void DescriptorsExhausted(ILogger logger, long limit, int reserveSize);

    [LoggerMessage(43, LogLevel.Information, "Descriptors are free again after {ElapsedMilliseconds} ms: the reserve is set aside and accepting resumes on every socket.", EventName = "DescriptorsAvailable")]
    public static partial void DescriptorsAvailable(ILogger logger, long elapsedMilliseconds);

    [LoggerMessage(44, LogLevel.Warning, "Could not set aside a reserve of {ReserveSize} descriptors for the runtime (limit {Limit}): accepting waits until descriptors are free.", EventName = "DescriptorReserveUnavailable")]
    public static partial void DescriptorReserveUnavailable(ILogger logger, int reserveSize, long limit);
}
