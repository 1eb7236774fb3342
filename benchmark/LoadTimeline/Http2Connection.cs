using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace LoadTimeline;

/// <summary>
/// HTTP/2 load through <see cref="HttpClient"/>: one <see cref="SocketsHttpHandler"/> per connection (so one HTTP/2
/// connection each, reopened by the handler when the server closes it), and <see cref="LoadOptions.Streams"/>
/// concurrent request loops on each. HTTP/2 only (<see cref="HttpVersionPolicy.RequestVersionExact"/>): TLS with
/// ALPN h2 and no certificate validation for https, prior-knowledge h2c for http. What HttpClient does by itself
/// (retrying a request the server refused with GOAWAY, opening a new connection) is part of what is measured; every
/// exception it lets out is one error, counted by kind and by exception type.
/// </summary>
internal sealed class Http2Connection : IDisposable
{
    private readonly LoadOptions _options;
    private readonly Recorder _recorder;
    private readonly HttpClient _client;
    private readonly CancellationToken _stop;

    public Http2Connection(LoadOptions options, Recorder recorder, CancellationToken stop)
    {
        _options = options;
        _recorder = recorder;
        _stop = stop;
        SocketsHttpHandler handler = new()
        {
            EnableMultipleHttp2Connections = false,
            MaxConnectionsPerServer = 1,
            ConnectTimeout = options.Timeout,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            UseCookies = false,
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,   // a self-signed test certificate
            },
        };
        _client = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = options.Timeout,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    public Task RunAsync()
    {
        Task[] streams = new Task[_options.Streams];
        for (int i = 0; i < streams.Length; i++)
        {
            streams[i] = Task.Run(StreamLoopAsync);
        }

        return Task.WhenAll(streams);
    }

    public void Dispose() => _client.Dispose();

    private async Task StreamLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            long sent = Stopwatch.GetTimestamp();
            try
            {
                using HttpRequestMessage request = new(HttpMethod.Get, _options.Url)
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
                // ResponseContentRead: the whole body is read within HttpClient.Timeout, the request's timeout
                using HttpResponseMessage response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, _stop).ConfigureAwait(false);
                _recorder.Response(sent, Stopwatch.GetTimestamp(), (int)response.StatusCode);
                continue;
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                (ErrorKind kind, string type) = Classify(e);
                _recorder.Error(kind, Stopwatch.GetTimestamp(), type);
            }

            if (_options.ErrorPause > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(_options.ErrorPause, _stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>The error's kind (as for HTTP/1.1) and a short name: the exception type, HttpClient's
    /// <see cref="HttpRequestError"/>, and the innermost socket error, e.g.
    /// <c>HttpRequestException:ConnectionError:ConnectionRefused</c>.</summary>
    internal static (ErrorKind Kind, string Type) Classify(Exception e)
    {
        if (e is OperationCanceledException)
        {
            return (ErrorKind.Timeout, e.InnerException is TimeoutException ? "Timeout" : e.GetType().Name);
        }

        SocketError? socketError = null;
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException se)
            {
                socketError = se.SocketErrorCode;
            }
        }

        HttpRequestError? httpError = e switch
        {
            HttpRequestException hre => hre.HttpRequestError,
            HttpIOException hio => hio.HttpRequestError,
            _ => null,
        };
        string type = e.GetType().Name + (httpError is null ? string.Empty : ":" + httpError) + (socketError is null ? string.Empty : ":" + socketError);
        ErrorKind kind = httpError switch
        {
            HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError
                or HttpRequestError.ProxyTunnelError => ErrorKind.Connect,
            _ => ErrorKind.Read,
        };
        return (kind, type);
    }
}
