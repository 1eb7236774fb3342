using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace LoadTimeline;

/// <summary>
/// One HTTP/1.1 load connection on a raw socket (TLS through <see cref="SslStream"/> for https): sends the
/// pre-encoded request, parses the response, and goes on with the next request on the same connection (keep-alive)
/// or on a new one (churn, or when the server said Connection: close or closed). Never retries: a failed connect,
/// send or receive, an early end of the connection, or no response within the timeout is one error, and the next
/// request goes on a new connection (after <see cref="LoadOptions.ErrorPause"/>).
/// </summary>
internal sealed class Http1Connection
{
    private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();

    private readonly LoadOptions _options;
    private readonly Recorder _recorder;
    private readonly EndPoint _endPoint;
    private readonly byte[] _request;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private readonly Lock _gate = new();
    private readonly CancellationToken _stop;
    private Socket? _socket;
    private SslStream? _ssl;
    private long _opStart;            // Stopwatch timestamp of the operation in flight; 0 idle; -1 aborted by the watchdog
    private ResponseParser _parser;

    public Http1Connection(LoadOptions options, Recorder recorder, EndPoint endPoint, byte[] request, CancellationToken stop)
    {
        _options = options;
        _recorder = recorder;
        _endPoint = endPoint;
        _request = request;
        _stop = stop;
    }

    /// <summary>The request bytes, encoded once: GET path HTTP/1.1, Host, and Connection: close for churn.</summary>
    public static byte[] EncodeRequest(Uri uri, bool close)
    {
        string host = uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port}";
        string text = $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {host}\r\n{(close ? "Connection: close\r\n" : string.Empty)}\r\n";
        return Encoding.ASCII.GetBytes(text);
    }

    public async Task RunAsync()
    {
        bool churn = _options.Mode == LoadMode.Churn;
        while (!_stop.IsCancellationRequested)
        {
            Outcome outcome;
            try
            {
                if (_socket is null && !await ConnectAsync().ConfigureAwait(false))
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
                _socket?.Dispose();
            }
        }
    }

    /// <summary>Ends the run: aborts whatever is in flight (the recorder has stopped counting).</summary>
    public void Abort()
    {
        lock (_gate)
        {
            _socket?.Dispose();
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
        Socket socket = new(_endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        lock (_gate)
        {
            _socket = socket;
            _opStart = Stopwatch.GetTimestamp();
        }

        try
        {
            await socket.ConnectAsync(_endPoint).ConfigureAwait(false);
            if (_options.Tls)
            {
                SslStream ssl = new(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
                _ssl = ssl;
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = _options.Url.Host,
                    EnabledSslProtocols = SslProtocols.None,
                    RemoteCertificateValidationCallback = static (_, _, _, _) => true,   // a self-signed test certificate
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                }).ConfigureAwait(false);
            }
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
        long sent = Stopwatch.GetTimestamp();
        Begin(sent);
        try
        {
            if (_ssl is null)
            {
                ReadOnlyMemory<byte> request = _request;
                while (!request.IsEmpty)
                {
                    int n = await _socket!.SendAsync(request, SocketFlags.None).ConfigureAwait(false);
                    request = request[n..];
                }
            }
            else
            {
                await _ssl.WriteAsync(_request).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            _recorder.Error(End() ? ErrorKind.Write : ErrorKind.Timeout, Stopwatch.GetTimestamp());
            return Outcome.Error;
        }

        _parser.Reset();
        int filled = 0;
        bool headersDone = false;
        while (true)
        {
            int n;
            try
            {
                Memory<byte> target = headersDone ? _buffer : _buffer.AsMemory(filled);
                n = _ssl is null
                    ? await _socket!.ReceiveAsync(target, SocketFlags.None).ConfigureAwait(false)
                    : await _ssl.ReadAsync(target).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
                _recorder.Error(End() ? ErrorKind.Read : ErrorKind.Timeout, Stopwatch.GetTimestamp());
                return Outcome.Error;
            }

            if (n == 0)
            {
                if (headersDone && _parser.UntilClose)
                {
                    _parser.EndOfStream();
                    break;
                }

                // the connection ended before a full response
                _recorder.Error(End() ? ErrorKind.Read : ErrorKind.Timeout, Stopwatch.GetTimestamp());
                return Outcome.Error;
            }

            bool ok;
            if (headersDone)
            {
                ok = _parser.Consume(_buffer.AsSpan(0, n));
            }
            else
            {
                int from = Math.Max(0, filled - 3);
                filled += n;
                int end = _buffer.AsSpan(from, filled - from).IndexOf(HeaderEnd);
                if (end < 0)
                {
                    ok = filled < _buffer.Length;   // a header block larger than the buffer is malformed here
                    if (ok)
                    {
                        continue;
                    }
                }
                else
                {
                    end += from + HeaderEnd.Length;
                    headersDone = true;
                    ok = _parser.ParseHeaders(_buffer.AsSpan(0, end), _buffer.AsSpan(end, filled - end));
                }
            }

            if (!ok)
            {
                _recorder.Error(End() ? ErrorKind.Read : ErrorKind.Timeout, Stopwatch.GetTimestamp(), "malformed response");
                return Outcome.Error;
            }

            if (_parser.Complete)
            {
                break;
            }
        }

        long done = Stopwatch.GetTimestamp();
        if (!End())
        {
            _recorder.Error(ErrorKind.Timeout, done);
            return Outcome.Error;
        }

        _recorder.Response(sent, done, _parser.Status);
        return _parser.ConnectionClose ? Outcome.Close : Outcome.KeepAlive;
    }

    private void Close()
    {
        SslStream? ssl;
        Socket? socket;
        lock (_gate)
        {
            ssl = _ssl;
            socket = _socket;
            _ssl = null;
            _socket = null;
            _opStart = 0;
        }

        ssl?.Dispose();
        socket?.Dispose();
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
