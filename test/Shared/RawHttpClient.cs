using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Shared;

/// <summary>
/// The repository's HTTP/1.1 client (the tests' and benchmark/LoadTimeline's): one connection on a raw socket, TLS
/// through <see cref="SslStream"/> when asked, one request at a time. Unlike HttpClient (whose SocketsHttpHandler
/// silently retries a request that failed on a reused connection) it never retries, reconnects or hides anything: a
/// refused connect, a reset or an end of the connection before a full response surfaces as an exception. A request
/// and a response that does not keep its body allocate nothing, so that a load generator can run on it.
/// </summary>
internal sealed class RawHttpClient : IDisposable
{
    /// <summary>How long a connect or a request of the test helpers may take unless told otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private const int BufferSize = 16 * 1024;

    private readonly EndPoint _endPoint;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private SslStream? _ssl;
    private Http1ResponseParser _parser;
    private ArrayBufferWriter<byte>? _body;

    /// <summary>A client for <paramref name="endPoint"/> (TCP or Unix domain socket), not connected yet: see
    /// <see cref="OpenAsync"/>. Disposing <see cref="Socket"/> aborts whatever is in flight. A load generator that
    /// opens a client per request passes the same <paramref name="buffer"/> (16 KiB or more) to each in turn, so that
    /// a connection costs no new buffer.</summary>
    public RawHttpClient(EndPoint endPoint, byte[]? buffer = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        _endPoint = endPoint;
        _buffer = buffer ?? new byte[BufferSize];
        Socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    }

    /// <summary>The client end of the connection, e.g. to look at its local port.</summary>
    public Socket Socket { get; }

    /// <summary>Opens a connection to a TCP or Unix domain socket endpoint within <paramref name="timeout"/>.</summary>
    public static async Task<RawHttpClient> ConnectAsync(EndPoint endPoint, TimeSpan? timeout = null)
    {
        var client = new RawHttpClient(endPoint);
        try
        {
            var limit = timeout ?? DefaultTimeout;
            using var cts = new CancellationTokenSource(limit);
            try
            {
                await client.OpenAsync(tls: null, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"Connecting to {endPoint} took longer than {limit}.");
            }

            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>One request on a fresh connection with <c>Connection: close</c>.</summary>
    public static async Task<RawHttpResponse> GetAsync(EndPoint endPoint, string path = "/", TimeSpan? timeout = null)
    {
        using var client = await ConnectAsync(endPoint, timeout).ConfigureAwait(false);
        return await client.GetAsync(path, keepAlive: false, timeout).ConfigureAwait(false);
    }

    /// <summary>
    /// <paramref name="count"/> requests, each on a fresh connection with <c>Connection: close</c>, at most
    /// <paramref name="concurrency"/> at a time. Any failed request fails the whole call.
    /// </summary>
    public static async Task<IReadOnlyList<RawHttpResponse>> GetManyAsync(EndPoint endPoint, int count, string path = "/", int concurrency = 4, TimeSpan? timeout = null)
    {
        var responses = new RawHttpResponse[count];
        var next = -1;
        var workers = Enumerable.Range(0, Math.Max(1, concurrency)).Select(async _ =>
        {
            int index;
            while ((index = Interlocked.Increment(ref next)) < count)
            {
                responses[index] = await GetAsync(endPoint, path, timeout).ConfigureAwait(false);
            }
        });
        await Task.WhenAll(workers).ConfigureAwait(false);
        return responses;
    }

    /// <summary>A GET request, encoded once: with <c>Connection: close</c> unless <paramref name="keepAlive"/>.</summary>
    public static byte[] EncodeGet(string pathAndQuery, string host, bool keepAlive) => Encoding.ASCII.GetBytes(
        $"GET {pathAndQuery} HTTP/1.1\r\nHost: {host}\r\n{(keepAlive ? string.Empty : "Connection: close\r\n")}\r\n");

    /// <summary>Connects, then authenticates with <paramref name="tls"/> when given.</summary>
    public ValueTask OpenAsync(SslClientAuthenticationOptions? tls, CancellationToken cancellationToken = default) =>
        tls is null ? Socket.ConnectAsync(_endPoint, cancellationToken) : OpenTlsAsync(tls, cancellationToken);

    /// <summary>Sends a GET and reads its response, body included.</summary>
    public async Task<RawHttpResponse> GetAsync(string path, bool keepAlive, TimeSpan? timeout = null)
    {
        await SendGetAsync(path, keepAlive).ConfigureAwait(false);
        return await ReadResponseAsync(timeout).ConfigureAwait(false);
    }

    /// <summary>Sends a GET without waiting for the response.</summary>
    public Task SendGetAsync(string path, bool keepAlive) =>
        SendAsync(EncodeGet(path, _endPoint is IPEndPoint ip ? ip.ToString() : "localhost", keepAlive)).AsTask();

    /// <summary>Reads one full response, body included, within <paramref name="timeout"/>.</summary>
    public async Task<RawHttpResponse> ReadResponseAsync(TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        using var cts = new CancellationTokenSource(limit);
        try
        {
            return await ReadResponseAsync(keepBody: true, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"No full response from {_endPoint} within {limit}.");
        }
    }

    /// <summary>Sends request bytes as they are.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendAsync(ReadOnlyMemory<byte> request, CancellationToken cancellationToken = default)
    {
        if (_ssl is not null)
        {
            await _ssl.WriteAsync(request, cancellationToken).ConfigureAwait(false);
            return;
        }

        while (!request.IsEmpty)
        {
            int sent = await Socket.SendAsync(request, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            request = request[sent..];
        }
    }

    /// <summary>
    /// Reads one full response: the status code, <c>Connection: close</c>, and a Content-Length, chunked or
    /// read-to-close body, kept as text only when <paramref name="keepBody"/>. Throws
    /// <see cref="InvalidDataException"/> for a malformed response and <see cref="IOException"/> when the connection
    /// ends before a full one.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<RawHttpResponse> ReadResponseAsync(bool keepBody, CancellationToken cancellationToken = default)
    {
        byte[] buffer = _buffer;
        IBufferWriter<byte>? body = null;
        if (keepBody)
        {
            _body ??= new ArrayBufferWriter<byte>();
            _body.ResetWrittenCount();
            body = _body;
        }

        _parser.Reset();
        while (true)
        {
            if (_end > _start)
            {
                _start += _parser.Parse(buffer.AsSpan(_start, _end - _start), body);
                if (_parser.Complete)
                {
                    break;
                }
            }

            if (_start > 0)
            {
                // What is left is the start of a header block or of a chunk's line: a few bytes, moved to the front.
                Buffer.BlockCopy(buffer, _start, buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            else if (_end == buffer.Length)
            {
                throw new InvalidDataException($"A header block or chunk line longer than {buffer.Length} bytes.");
            }

            int read = _ssl is null
                ? await Socket.ReceiveAsync(buffer.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false)
                : await _ssl.ReadAsync(buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                if (_parser.EndOfStream())
                {
                    break;
                }

                throw new IOException(
                    $"{_endPoint} closed the connection before a full response ({_end - _start} unparsed bytes).");
            }

            _end += read;
        }

        return new RawHttpResponse(_parser.StatusCode, _parser.ConnectionClose,
            keepBody ? Encoding.UTF8.GetString(_body!.WrittenSpan) : string.Empty);
    }

    // Apart, so that a plain connect is the socket's own ValueTask: no state machine of its own per connection.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OpenTlsAsync(SslClientAuthenticationOptions tls, CancellationToken cancellationToken)
    {
        await Socket.ConnectAsync(_endPoint, cancellationToken).ConfigureAwait(false);
        _ssl = new SslStream(new NetworkStream(Socket, ownsSocket: false), leaveInnerStreamOpen: false);
        await _ssl.AuthenticateAsClientAsync(tls, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _ssl?.Dispose();
        Socket.Dispose();
    }
}
