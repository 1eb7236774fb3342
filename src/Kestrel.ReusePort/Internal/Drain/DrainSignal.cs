using System;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal;

/// <summary>The app's view of the drain (<see cref="IReusePortLifetime"/>): a token triggered once accepting has stopped.</summary>
internal sealed class DrainSignal(ILogger logger) : IReusePortLifetime, IDisposable
{
    private readonly CancellationTokenSource _draining = new();

    public CancellationToken Draining => _draining.Token;

    public void Trigger()
    {
        try
        {
            _draining.Cancel();
        }
        catch (AggregateException e)
        {
            // An app's callback that throws must not stop the drain.
            ReusePortLog.DrainCallbackFailed(logger, e);
        }
    }

    public void Dispose() => _draining.Dispose();
}
