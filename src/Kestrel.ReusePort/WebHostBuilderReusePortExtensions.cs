using System;
using Kestrel.ReusePort;
using Kestrel.ReusePort.Internal;
using Kestrel.ReusePort.Internal.Configuration;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Internal.Hosting;
using Kestrel.ReusePort.Internal.Readiness;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
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
    /// <para>
    /// The options are read from the <c>ReusePort</c> section of the host's configuration (e.g. <c>ReusePort:ListenerCount</c>
    /// in appsettings.json, <c>ReusePort__ListenerCount</c> in the environment, <c>--ReusePort:ListenerCount=4</c>);
    /// options set in code override it.
    /// </para>
    /// <para>
    /// Under the host, an instance warms up and accepts on the port only once the application has started, and drains
    /// its connections when it stops: see <see cref="ReusePortSocketTransportOptions"/> and <see cref="IReusePortLifetime"/>.
    /// </para>
    /// </remarks>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseReusePortSockets(this IWebHostBuilder hostBuilder)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);

        // Read now, before the host exists: Hosting.Systemd 11 clears NOTIFY_SOCKET once its notifier is created.
        var notifySocket = NotifySocketAddress.FromEnvironment();
        return hostBuilder.ConfigureServices((context, services) =>
        {
            services.AddOptions<ReusePortSocketTransportOptions>().ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReusePortSocketTransportOptions>, ReusePortSocketTransportOptionsValidator>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReusePortSocketTransportOptions>, RemovalDelayValidator>());

            // Registered once, even if the method is called again: a second factory would bind every port twice.
            foreach (var descriptor in services)
            {
                if (descriptor.ServiceType == typeof(ReusePortSocketTransportFactory))
                {
                    return;
                }
            }

            // The ReusePort section first, so that options set in code, in any order, override it (as with Kestrel).
            services.Insert(0, ServiceDescriptor.Singleton<IConfigureOptions<ReusePortSocketTransportOptions>>(
                new ReusePortConfigureOptions(context.Configuration.GetSection(ReusePortConfigurationKeys.SectionName))));
            services.AddSingleton(notifySocket);
            ReusePortServices.Add(services);
            services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<ReusePortSocketTransportFactory>());
            services.AddSingleton<IHostedService, ReusePortHostLifecycle>();
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
