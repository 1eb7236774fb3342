using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Drains the transport when the host begins to stop, before Kestrel's own shutdown closes idle connections.
/// </summary>
internal sealed class DrainService(ReusePortSocketTransportFactory factory, IOptions<ReusePortSocketTransportOptions> options) : IHostedLifecycleService
{
    public Task StoppingAsync(CancellationToken cancellationToken) => factory.DrainAsync(options.Value.DrainTimeout, cancellationToken);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
