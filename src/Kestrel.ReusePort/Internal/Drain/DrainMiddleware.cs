using System;
using System.Diagnostics;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Where the drain decides how a connection closes. While the transport drains, each client that sends a request is
/// told to take its next one elsewhere: HTTP/1.x responses carry <c>Connection: close</c>, and an HTTP/2 connection
/// gets GOAWAY. Either way the client learns it between two requests; an idle connection is left alone, because a
/// server-side close races with a request the client may be sending on it.
/// </summary>
/// <remarks>
/// Runs first in the pipeline, for the connections this transport accepted from the port (others pass through). It
/// also counts each connection's requests in flight, which the drain reports at its bound.
/// </remarks>
internal sealed class DrainMiddleware(RequestDelegate next, ReusePortSocketTransportFactory factory)
{
    public Task InvokeAsync(HttpContext context)
    {
        var connection = context.Features.Get<TrackedConnection>();
        if (connection is null)
        {
            return next(context);
        }

        connection.RequestStarted();
        Task task;
        try
        {
            if (factory.IsDraining)
            {
                var protocol = context.Request.Protocol;
                if (HttpProtocol.IsHttp2(protocol) || HttpProtocol.IsHttp3(protocol))
                {
                    return GoAwayAsync(context, connection);
                }

                context.Response.Headers.Connection = "close";
                connection.ToldConnectionClose();
            }

            task = next(context);
        }
        catch
        {
            connection.RequestEnded();
            throw;
        }

        if (task.IsCompletedSuccessfully)
        {
            connection.RequestEnded();
            return task;
        }

        return AwaitAsync(task, connection);
    }

    private static async Task AwaitAsync(Task task, TrackedConnection connection)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        finally
        {
            connection.RequestEnded();
        }
    }

    private async Task GoAwayAsync(HttpContext context, TrackedConnection connection)
    {
        try
        {
            // Kestrel answers with GOAWAY and lets the streams in flight finish.
            context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
            var goAway = connection.ToldGoAway();
            await next(context).ConfigureAwait(false);

            // Kestrel fixes the connection's last stream id, in a final GOAWAY, as soon as no stream is active, and a
            // stream stops counting once its response's end is written. A request the client sent before it saw the
            // first GOAWAY would then be refused: hold this response's end back until the client had a round trip.
            var remaining = GoAwayGrace.For(context) - Stopwatch.GetElapsedTime(goAway);
            if (remaining > TimeSpan.Zero && !context.RequestAborted.IsCancellationRequested)
            {
                await Task.Delay(remaining, context.RequestAborted).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away during the grace: nothing left to hold.
        }
        finally
        {
            connection.RequestEnded();
        }
    }
}
