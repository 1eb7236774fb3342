using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Listening;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Warmup;

/// <summary>
/// Where warm-up happens: before the instance accepts from the port, GET requests go through Kestrel's real pipeline
/// for each endpoint, over the endpoint's private <see cref="WarmupListener"/>, with HTTP/1.1 and HTTP/2 (and TLS
/// where the endpoint has it), so that the JIT, the route table and the endpoints are ready for the first client.
/// </summary>
/// <remarks>
/// A protocol the endpoint does not offer simply fails its first request and is skipped. The warm-up never blocks
/// the start for longer than its timeout; whatever failed is logged with the reason, and returned, for
/// <see cref="WarmupFailurePolicy"/> to decide whether the instance may take the port.
/// </remarks>
internal static class WarmupRunner
{
    private const string UserAgent = "Kestrel.ReusePort-warmup";
    private static readonly Version[] s_protocols = [HttpVersion.Version11, HttpVersion.Version20];

    /// <summary>
    /// Warms every endpoint up, each over a private socket opened for it and closed once it is warm; returns those whose
    /// warm-up failed (a 5xx, no answer, the timeout), not a 404.
    /// </summary>
    public static async Task<List<IPEndPoint>> RunAsync(
        IReadOnlyList<ReusePortConnectionListener> endpoints,
        IEnumerable<string> serverAddresses,
        ReusePortWarmupOptions options,
        ILogger logger,
        ReusePortMetrics metrics,
        CancellationToken cancellationToken)
    {
        IReadOnlyList<string> paths = options.Paths.Count > 0 ? [.. options.Paths] : ReusePortWarmupOptions.DefaultPaths;
        var addresses = serverAddresses.Select(TryParse).Where(a => a is not null).Cast<BindingAddress>().ToList();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.Timeout);
        var failed = new List<IPEndPoint>();

        foreach (var pending in endpoints)
        {
            var endpoint = (IPEndPoint)pending.EndPoint;
            using var listener = WarmupListener.Start(pending.DispatchWarmup);
            var started = Stopwatch.GetTimestamp();
            var https = addresses.Any(a => string.Equals(a.Scheme, "https", StringComparison.OrdinalIgnoreCase) && Matches(a, endpoint));
            var host = options.Host ?? (IPAddress.IsLoopback(endpoint.Address) || endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any)
                ? "localhost"
                : endpoint.Address.ToString());
            var outcome = await WarmEndpointAsync(listener, https, host, endpoint.Port, paths, options.Requests, deadline.Token, cancellationToken).ConfigureAwait(false);
            var elapsed = Stopwatch.GetElapsedTime(started);
            metrics.WarmupCompleted(pending.EndpointTags, elapsed, outcome.ErrorType);
            if (outcome.ErrorType is null)
            {
                ReusePortLog.WarmedUp(logger, endpoint, (long)elapsed.TotalMilliseconds, outcome.Summary);
            }
            else
            {
                ReusePortLog.WarmupFailed(logger, endpoint, (long)elapsed.TotalMilliseconds, outcome.Summary);
                failed.Add(endpoint);
            }

            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }
        }

        return failed;
    }

    private static async Task<(string Summary, string? ErrorType)> WarmEndpointAsync(
        WarmupListener listener, bool https, string host, int port, IReadOnlyList<string> paths, int requests, CancellationToken deadline, CancellationToken hostToken)
    {
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            ConnectCallback = async (context, token) =>
            {
                var socket = listener.CreateClientSocket();
                try
                {
                    await socket.ConnectAsync(listener.EndPoint, token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };

        // The server at the other end is this very process, reached over its private socket: there is no one else whose
        // certificate to check, and the certificate may name a host other than the one used here.
#pragma warning disable CA5359
        handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
        handler.SslOptions.TargetHost = host;

        using var client = new HttpClient(handler) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd(UserAgent);
        var authority = host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";

        var summary = new StringBuilder();
        var answered = false;
        var http11Served = false;
        var serverErrors = 0;
        foreach (var version in s_protocols)
        {
            // Without TLS, Kestrel speaks HTTP/2 only on endpoints that speak nothing else (prior knowledge), and those
            // answer HTTP/1.1 with a 400 of their own: HTTP/2 is tried there only when HTTP/1.1 got no other answer.
            // With TLS, ALPN lets an endpoint speak both.
            if (version == HttpVersion.Version20 && !https && http11Served)
            {
                continue;
            }

            var statuses = new List<int>();
            string? protocolFailure = null;
            foreach (var path in paths)
            {
                for (var i = 0; i < requests && protocolFailure is null; i++)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"{(https ? "https" : "http")}://{authority}{path}"))
                    {
                        Version = version,
                        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    };

                    // The last HTTP/1.1 request also takes Kestrel's Connection: close path, which churning clients take.
                    request.Headers.ConnectionClose = version == HttpVersion.Version11 && path == paths[^1] && i == requests - 1;
                    try
                    {
                        using var response = await client.SendAsync(request, deadline).ConfigureAwait(false);
                        await response.Content.CopyToAsync(Stream.Null, deadline).ConfigureAwait(false);
                        statuses.Add((int)response.StatusCode);
                        serverErrors += (int)response.StatusCode >= 500 ? 1 : 0;
                        http11Served |= version == HttpVersion.Version11 && response.StatusCode != HttpStatusCode.BadRequest;
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                    {
                        var what = hostToken.IsCancellationRequested ? "the host stopped" : "the warm-up timed out";
                        return (Append(summary, $"{what} during GET {path} over {Name(version)}"), hostToken.IsCancellationRequested ? "canceled" : "timeout");
                    }
                    catch (HttpRequestException e) when (statuses.Count == 0)
                    {
                        // The endpoint does not offer this protocol (or TLS failed): noted, and the next one is tried.
                        protocolFailure = $"no answer ({Describe(e)})";
                    }
                    catch (HttpRequestException e)
                    {
                        protocolFailure = $"GET {path} failed after {statuses.Count} responses ({Describe(e)})";
                    }
                }
            }

            if (statuses.Count > 0)
            {
                answered = true;
                Append(summary, $"{Name(version)} {string.Join(", ", statuses.GroupBy(s => s).Select(g => $"{g.Count()}x {g.Key}"))}");
            }

            if (protocolFailure is not null)
            {
                Append(summary, $"{Name(version)} {protocolFailure}");
            }
        }

        if (!answered)
        {
            return (summary.ToString(), "no_response");
        }

        return (summary.ToString(), serverErrors > 0 ? "server_error" : null);
    }

    private static string Name(Version version) => version == HttpVersion.Version20 ? "HTTP/2" : "HTTP/1.1";

    private static string Append(StringBuilder summary, string text) =>
        summary.Append(summary.Length > 0 ? "; " : string.Empty).Append(text).ToString();

    private static string Describe(HttpRequestException e) =>
        e.InnerException is { } inner && inner.Message != e.Message ? $"{e.Message} {inner.Message}" : e.Message;

    private static BindingAddress? TryParse(string address)
    {
        try
        {
            return BindingAddress.Parse(address);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Whether a server address names this endpoint: same port, and the same IP unless the host is a name.</summary>
    private static bool Matches(BindingAddress address, IPEndPoint endpoint) =>
        address.Port == endpoint.Port
        && (!IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip) || ip.Equals(endpoint.Address));
}
