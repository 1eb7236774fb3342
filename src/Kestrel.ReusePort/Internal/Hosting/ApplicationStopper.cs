using System.Net;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Handoff.Server;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Hosting;

/// <summary>
/// Obeys a successor's stop request: logs it and stops the app, whose host then drains this instance. Without a host
/// (the factory used on its own) there is no app to stop, and the request is only logged.
/// </summary>
internal sealed class ApplicationStopper(ILogger logger, IHostApplicationLifetime? lifetime) : IStopRequestHandler
{
    public void StopRequested(int processId, EndPoint endpoint)
    {
        ReusePortLog.StopRequested(logger, processId, endpoint);
        lifetime?.StopApplication();
    }
}
