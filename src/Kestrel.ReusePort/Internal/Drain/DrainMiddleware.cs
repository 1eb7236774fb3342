using System;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>
/// Where the drain decides how a connection closes. While the transport drains, each client that sends a request is
/// told to take its next one elsewhere: HTTP/1.x responses carry <c>Connection: close</c>, and an HTTP/2 connection
/// gets GOAWAY. Either way the client learns it between two requests; an idle connection is left alone, because a
/// server-side close races with a request the client may be sending on it.
/// </summary>
/// <remarks>
/// Runs first in the pipeline, for the connections this transport accepted from the port (others pass through). A
/// request already running when the drain begins is told too: an HTTP/1.x response that has not started yet gets
/// <c>Connection: close</c> when it starts, and an HTTP/2 connection gets GOAWAY once the stream ended, so that the
/// drain ends with the request instead of waiting for the connection's keep-alive timeout. It also counts each
/// connection's requests in flight, which the drain reports at its timeout.
/// </remarks>
internal sealed class DrainMiddleware(RequestDelegate next)
{
    private static readonly Func<object, Task> s_closeIfDraining = CloseIfDraining;

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
            if (!IsMultiplexed(context.Request.Protocol))
            {
                // Decided when the response starts, so that a request already running when the drain begins is told too.
                context.Response.OnStarting(s_closeIfDraining, context);
            }
            else if (connection.IsDraining)
            {
                return GoAwayAsync(context, connection);
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
            Ended(context, connection);
            return task;
        }

        return AwaitAsync(task, context, connection);
    }

    private static bool IsMultiplexed(string protocol) => HttpProtocol.IsHttp2(protocol) || HttpProtocol.IsHttp3(protocol);

    /// <summary>An HTTP/1.x response starts: while the transport drains, it is the connection's last.</summary>
    private static Task CloseIfDraining(object state)
    {
        var context = (HttpContext)state;

        // Not an upgrade (a WebSocket): the connection then carries another protocol, which the app ends itself
        // (IReusePortLifetime.Draining), and Connection: close would contradict Connection: Upgrade.
        if (context.Features.Get<TrackedConnection>() is { IsDraining: true } connection &&
            context.Response.StatusCode != StatusCodes.Status101SwitchingProtocols)
        {
            context.Response.Headers.Connection = "close";
            connection.ToldConnectionClose();
        }

        return Task.CompletedTask;
    }

    private static async Task AwaitAsync(Task task, HttpContext context, TrackedConnection connection)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        finally
        {
            Ended(context, connection);
        }
    }

    private static void Ended(HttpContext context, TrackedConnection connection)
    {
        connection.RequestEnded();

        // A stream that began before the drain and ended during it: its connection gets GOAWAY too, once quiet.
        if (connection.IsDraining && connection.Told is null && IsMultiplexed(context.Request.Protocol))
        {
            var lifetime = context.Features.Get<IConnectionLifetimeNotificationFeature>();
            var grace = GoAwayGrace.For(context);
            _ = connection.GoAway(() => QuietGoAway.SendAsync(connection, lifetime, grace));
        }
    }

    private async Task GoAwayAsync(HttpContext context, TrackedConnection connection)
    {
        try
        {
            var lifetime = context.Features.Get<IConnectionLifetimeNotificationFeature>();
            await connection.GoAwayAsync(() => QuietGoAway.SendAsync(connection, lifetime, GoAwayGrace.For(context)), context.RequestAborted).ConfigureAwait(false);
            await next(context).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away (or reset the stream) while its request waited for the GOAWAY: nothing to answer.
        }
        finally
        {
            connection.RequestEnded();
        }
    }
}
