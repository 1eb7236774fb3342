using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Shared;

namespace LoadTimeline;

/// <summary>
/// One HTTP/1.1 load connection on the repository's <see cref="RawHttpClient"/> (TLS for https): sends the
/// pre-encoded request, reads the response without keeping its body, and goes on with the next request on the same
/// connection (keep-alive) or on a new one (churn, or when the server said Connection: close or closed). Never retries: a failed connect,
/// send or receive, an early end of the connection, or no response within the timeout is one error, and the next
/// request goes on a new connection (after <see cref="LoadOptions.ErrorPause"/>).
/// </summary>
internal sealed class Http1Connection
{
    private readonly LoadOptions _options;
    private readonly Recorder _recorder;
    private readonly EndPoint _endPoint;
    private readonly byte[] _request;
    private readonly byte[] _buffer = new byte[16 * 1024];   // the receive buffer of each client in turn
    private readonly Lock _gate = new();
    private readonly CancellationToken _stop;
    private RawHttpClient? _client;
    private long _opStart;            // Stopwatch timestamp of the operation in flight; 0 idle; -1 aborted by the watchdog

    public Http1Connection(LoadOptions options, Recorder recorder, EndPoint endPoint, byte[] request, CancellationToken stop)
    {
        _options = options;
        _recorder = recorder;
        _endPoint = endPoint;
        _request = request;
        _stop = stop;
    }

    /// <summary>The request bytes, encoded once: GET path HTTP/1.1, Host, and Connection: close for churn.</summary>
    public static byte[] EncodeRequest(Uri uri, bool close) =>
        RawHttpClient.EncodeGet(uri.PathAndQuery, uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port}", keepAlive: !close);

    public async Task RunAsync()
    {
        bool churn = _options.Mode == LoadMode.Churn;
        while (!_stop.IsCancellationRequested)
        {
            Outcome outcome;
            try
            {
                if (_client is null && !await ConnectAsync().ConfigureAwait(false))
                {
                    await PauseAsync().ConfigureAwait(false);
                    continue;
                }

                outcome = await RequestAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                // anything the handlers above did not expect still ends only this request, counted by its type
                _recorder.Error(End() ? ErrorKind.Read : ErrorKind.Timeout, Stopwatch.GetTimestamp(), "unexpected " + e.GetType().Name);
                outcome = Outcome.Error;
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                break;
            }

            if (outcome != Outcome.KeepAlive || churn)
            {
                Close();
                if (outcome == Outcome.Error)
                {
                    await PauseAsync().ConfigureAwait(false);
                }
            }
        }

        Close();
    }

    /// <summary>The watchdog: aborts the operation in flight once it is older than the timeout.</summary>
    public void CheckTimeout(long now, long timeoutTicks)
    {
        long start = Volatile.Read(ref _opStart);
        if (start <= 0 || now - start <= timeoutTicks)
        {
            return;
        }

        lock (_gate)
        {
            if (_opStart == start)
            {
                _opStart = -1;
                _client?.Socket.Dispose();
            }
        }
    }

    /// <summary>Ends the run: aborts whatever is in flight (the recorder has stopped counting).</summary>
    public void Abort()
    {
        lock (_gate)
        {
            _client?.Socket.Dispose();
        }
    }

    private void Begin(long now)
    {
        lock (_gate)
        {
            _opStart = now;
        }
    }

    /// <summary>Ends the operation in flight; false when the watchdog aborted it.</summary>
    private bool End()
    {
        lock (_gate)
        {
            bool timedOut = _opStart == -1;
            _opStart = 0;
            return !timedOut;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ConnectAsync()
    {
        RawHttpClient client = new(_endPoint, _buffer);
        lock (_gate)
        {
            _client = client;
            _opStart = Stopwatch.GetTimestamp();
        }

        try
        {
            SslClientAuthenticationOptions? tls = _options.Tls
                ? new SslClientAuthenticationOptions
                {
                    TargetHost = _options.Url.Host,
                    EnabledSslProtocols = SslProtocols.None,
                    RemoteCertificateValidationCallback = static (_, _, _, _) => true,   // a self-signed test certificate
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                }
                : null;
            await client.OpenAsync(tls).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or AuthenticationException)
        {
            _recorder.Error(End() ? ErrorKind.Connect : ErrorKind.Timeout, Stopwatch.GetTimestamp());
            Close();
            return false;
        }

        if (!End())
        {
            _recorder.Error(ErrorKind.Timeout, Stopwatch.GetTimestamp());
            Close();
            return false;
        }

        return true;
    }

    private enum Outcome
    {
        /// <summary>The request failed (counted); the connection is done.</summary>
        Error,

        /// <summary>A full response, after which the connection ends (Connection: close, or a body up to the close).</summary>
        Close,

        /// <summary>A full response; the connection can carry the next request.</summary>
        KeepAlive,
    }

    /// <summary>One request. The pooling builder reuses the state machine's box: no allocation per request.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Outcome> RequestAsync()
    {
        RawHttpClient client = _client!;
        long sent = Stopwatch.GetTimestamp();
        Begin(sent);
        try
        {
            await client.SendAsync(_request).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            _recorder.Error(End() ? ErrorKind.Write : ErrorKind.Timeout, Stopwatch.GetTimestamp());
            return Outcome.Error;
        }

        RawHttpResponse response;
        try
        {
            response = await client.ReadResponseAsync(keepBody: false).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            // a reset, or the connection ended before a full response
            _recorder.Error(End() ? ErrorKind.Read : ErrorKind.Timeout, Stopwatch.GetTimestamp());
            return Outcome.Error;
        }
        catch (InvalidDataException)
        {
            _recorder.Error(End() ? ErrorKind.Read : ErrorKind.Timeout, Stopwatch.GetTimestamp(), "malformed response");
            return Outcome.Error;
        }

        long done = Stopwatch.GetTimestamp();
        if (!End())
        {
            _recorder.Error(ErrorKind.Timeout, done);
            return Outcome.Error;
        }

        _recorder.Response(sent, done, response.StatusCode);
        return response.ConnectionClose ? Outcome.Close : Outcome.KeepAlive;
    }

    private void Close()
    {
        RawHttpClient? client;
        lock (_gate)
        {
            client = _client;
            _client = null;
            _opStart = 0;
        }

        client?.Dispose();
    }

    private async ValueTask PauseAsync()
    {
        if (_options.ErrorPause > TimeSpan.Zero && !_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.ErrorPause, _stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
