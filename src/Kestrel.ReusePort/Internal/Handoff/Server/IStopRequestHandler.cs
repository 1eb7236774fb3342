using System.Net;

namespace Kestrel.ReusePort.Internal.Handoff.Server;

/// <summary>Where the handoff server delivers "stop, your successor is ready": one call, straight to whoever stops the app.</summary>
internal interface IStopRequestHandler
{
    /// <summary>Process <paramref name="processId"/> took the sockets of <paramref name="endpoint"/> over and asked this instance to drain and exit.</summary>
    void StopRequested(int processId, EndPoint endpoint);
}
