using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Internal.Handoff.Server;
using Kestrel.ReusePort.Internal.Listening;
using Kestrel.ReusePort.Internal.Readiness;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal.Hosting;

/// <summary>
/// The services behind <c>UseReusePortSockets()</c>, one per concern: the factory binds, <see cref="ListenerActivation"/>
/// decides when endpoints accept, <see cref="TransportDrain"/> drains, <see cref="ApplicationStopper"/> obeys a
/// successor's stop request, <see cref="SystemdNotifier"/> tells the service manager; the host lifecycle drives them.
/// </summary>
internal static class ReusePortServices
{
    public static void Add(IServiceCollection services)
    {
        services.AddSingleton<ListenerActivation>();
        services.AddSingleton<IAcceptingListeners>(sp => sp.GetRequiredService<ListenerActivation>());
        services.AddSingleton(sp => new ReusePortMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<ListenerActivation>().ObserveListeningSockets));
        services.AddSingleton(sp => new SystemdNotifier(sp, Logger(sp)));
        services.AddSingleton<TransportDrain>();
        services.AddSingleton<IReusePortLifetime>(sp => sp.GetRequiredService<TransportDrain>());
        services.AddSingleton<IStopRequestHandler>(sp => new ApplicationStopper(Logger(sp), sp.GetRequiredService<IHostApplicationLifetime>()));
        services.AddSingleton(sp => new ReusePortSocketTransportFactory(
            sp.GetRequiredService<IOptions<ReusePortSocketTransportOptions>>(),
            sp.GetRequiredService<IOptions<SocketTransportOptions>>(),
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetRequiredService<ListenerActivation>(),
            sp.GetRequiredService<ReusePortMetrics>(),
            sp.GetRequiredService<TransportDrain>().Connections,
            sp.GetRequiredService<IStopRequestHandler>()));
    }

    private static ILogger Logger(System.IServiceProvider services) => services.GetRequiredService<ILoggerFactory>().CreateLogger(ReusePortLog.CategoryName);
}
