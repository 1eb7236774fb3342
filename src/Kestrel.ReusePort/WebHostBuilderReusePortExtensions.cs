using System;
using Kestrel.ReusePort;
using Kestrel.ReusePort.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>
/// <see cref="IWebHostBuilder"/> extension methods to listen with one SO_REUSEPORT socket per core.
/// </summary>
public static class WebHostBuilderReusePortExtensions
{
    /// <summary>
    /// Makes Kestrel listen on every IP endpoint with <see cref="ReusePortSocketTransportOptions.ListenerCount"/>
    /// SO_REUSEPORT sockets, each with its own accept loop, so that several sockets of this process and of other
    /// processes of the same user can share the port. Unix domain sockets, file handles and named pipes keep
    /// Kestrel's stock transport.
    /// </summary>
    /// <remarks>
    /// Under the host, an instance warms up and accepts on the port only once the application has started, and drains
    /// its connections when it stops: see <see cref="ReusePortSocketTransportOptions"/> and <see cref="IReusePortLifetime"/>.
    /// </remarks>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseReusePortSockets(this IWebHostBuilder hostBuilder)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);

        return hostBuilder.ConfigureServices(services =>
        {
            services.AddOptions<ReusePortSocketTransportOptions>().ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReusePortSocketTransportOptions>, ReusePortSocketTransportOptionsValidator>());

            // Registered once, even if the method is called again: a second factory would bind every port twice.
            foreach (var descriptor in services)
            {
                if (descriptor.ServiceType == typeof(ReusePortSocketTransportFactory))
                {
                    return;
                }
            }

            services.AddSingleton<ReusePortSocketTransportFactory>();
            services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<ReusePortSocketTransportFactory>());
            services.AddSingleton<IReusePortLifetime>(sp => sp.GetRequiredService<ReusePortSocketTransportFactory>().Lifetime);
            services.AddSingleton<IHostedService, ReusePortHostLifecycle>();
            services.AddSingleton<IHostedService, TieredCompilationWorkerPriority>();
            services.AddSingleton<IStartupFilter, DrainStartupFilter>();
        });
    }

    /// <summary>
    /// Makes Kestrel listen on every IP endpoint with SO_REUSEPORT sockets, configured by <paramref name="configureOptions"/>.
    /// </summary>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <param name="configureOptions">Configures the <see cref="ReusePortSocketTransportOptions"/>.</param>
    /// <returns>The web host builder.</returns>
    /// <seealso cref="UseReusePortSockets(IWebHostBuilder)"/>
    public static IWebHostBuilder UseReusePortSockets(this IWebHostBuilder hostBuilder, Action<ReusePortSocketTransportOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);
        ArgumentNullException.ThrowIfNull(configureOptions);

        return hostBuilder.UseReusePortSockets().ConfigureServices(services => services.Configure(configureOptions));
    }
}
