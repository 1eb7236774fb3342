using Kestrel.ReusePort.Internal.Configuration;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Internal.Hosting;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Tests;

/// <summary>UseReusePortSockets may be called more than once; the transport is registered once.</summary>
public class RegistrationTests
{
    [Fact]
    public async Task CallingUseReusePortSocketsAgainRegistersOneFactory()
    {
        IServiceCollection? services = null;
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            // The first call, with ListenerCount = 2; then two more.
            ConfigureReusePort = o => o.ListenerCount = 2,
            ConfigureBuilder = b =>
            {
                b.WebHost.UseReusePortSockets();
                b.WebHost.UseReusePortSockets(o => o.SocketHandoff = false);
                services = b.Services;
            },
        });

        Assert.NotNull(services);
        Assert.Single(services, d => d.ServiceType == typeof(ReusePortSocketTransportFactory));
        Assert.Single(services, d => d.ServiceType == typeof(IConnectionListenerFactory) && d.ImplementationFactory is not null);
        var validators = services.Where(d => d.ServiceType == typeof(IValidateOptions<ReusePortSocketTransportOptions>)).ToList();
        Assert.NotEmpty(validators);
        Assert.All(validators.GroupBy(d => d.ImplementationType), g => Assert.Single(g));
        Assert.Single(services, d => d.ServiceType == typeof(IConfigureOptions<ReusePortSocketTransportOptions>) && d.ImplementationInstance is ReusePortConfigureOptions);
        var provider = server.App.Services;
        Assert.Single(provider.GetServices<IHostedService>().OfType<ReusePortHostLifecycle>());
        Assert.Single(provider.GetServices<IStartupFilter>().OfType<DrainStartupFilter>());

        // One factory bound the endpoint once: ListenerCount sockets, not twice that.
        var port = server.Port;
        Assert.Equal(2, ListeningSockets.HeldBy(Environment.ProcessId, port).Count);
        Assert.Equal(2, ListeningSockets.OnPort(port).Count);
        Assert.Single(server.Logs.ReusePortEvents(1));

        // The options of every call apply.
        var options = provider.GetRequiredService<IOptions<ReusePortSocketTransportOptions>>().Value;
        Assert.Equal(2, options.ListenerCount);
        Assert.False(options.SocketHandoff);
        Assert.Equal(TimeSpan.Zero, options.DrainTimeout);

        var response = await RawHttpClient.GetAsync(server.EndPoint);
        Assert.StartsWith(server.Greeting, response.Body, StringComparison.Ordinal);
    }
}
