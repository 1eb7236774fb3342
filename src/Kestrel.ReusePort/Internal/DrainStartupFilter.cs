using System;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// While the transport drains, tells each client that sends a request to take its next one elsewhere: HTTP/1.x
/// responses carry <c>Connection: close</c>, and an HTTP/2 connection gets GOAWAY. Either way the client learns it
/// between two requests. Closing an idle keep-alive connection from the server side instead races with a request the
/// client may be sending on it.
/// </summary>
internal sealed class DrainStartupFilter(ReusePortSocketTransportFactory factory) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(nextMiddleware => context =>
        {
            if (factory.IsDraining)
            {
                AskClientToMove(context);
            }

            return nextMiddleware(context);
        });
        next(app);
    };

    private static void AskClientToMove(HttpContext context)
    {
        var protocol = context.Request.Protocol;
        if (HttpProtocol.IsHttp2(protocol) || HttpProtocol.IsHttp3(protocol))
        {
            // Kestrel answers with GOAWAY and lets the streams in flight finish.
            context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }
        else
        {
            context.Response.Headers.Connection = "close";
        }
    }
}
