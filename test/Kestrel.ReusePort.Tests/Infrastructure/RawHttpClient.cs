using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A strict HTTP/1.1 client over one raw socket. Unlike HttpClient (whose SocketsHttpHandler silently retries a request
/// that failed on a reused connection) it never retries, reconnects or hides anything: a refused connect, a reset or an
/// end of stream before a full response surfaces as an exception.
/// </summary>
public sealed class RawHttpClient : IDisposable
{
    /// <summary>How long one request may take unless told otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly string _host;
    private byte[] _buffer = new byte[8192];
    private int _start;
    private int _end;

    private RawHttpClient(Socket socket, string host)
    {
        _socket = socket;
        _host = host;
    }

    /// <summary>The client end of the connection, e.g. to look at its local port.</summary>
    public Socket Socket => _socket;

    /// <summary>Opens a connection to a TCP or Unix domain socket endpoint.</summary>
    public static async Task<RawHttpClient> ConnectAsync(EndPoint endPoint, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
            try
            {
                await socket.ConnectAsync(endPoint, cts.Token);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"Connecting to {endPoint} took longer than {timeout ?? DefaultTimeout}.");
            }

            return new RawHttpClient(socket, endPoint is IPEndPoint ip ? ip.ToString() : "localhost");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>One request on a fresh connection with <c>Connection: close</c>.</summary>
    public static async Task<RawHttpResponse> GetAsync(EndPoint endPoint, string path = "/", TimeSpan? timeout = null)
    {
        using var client = await ConnectAsync(endPoint, timeout);
        return await client.GetAsync(path, keepAlive: false, timeout);
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
                responses[index] = await GetAsync(endPoint, path, timeout);
            }
        });
        await Task.WhenAll(workers);
        return responses;
    }

    /// <summary>Sends a GET and reads its response.</summary>
    public async Task<RawHttpResponse> GetAsync(string path, bool keepAlive, TimeSpan? timeout = null)
    {
        await SendGetAsync(path, keepAlive);
        return await ReadResponseAsync(timeout);
    }

    /// <summary>Sends a GET without waiting for the response.</summary>
    public async Task SendGetAsync(string path, bool keepAlive)
    {
        var request = Encoding.ASCII.GetBytes(
            $"GET {path} HTTP/1.1\r\nHost: {_host}\r\nConnection: {(keepAlive ? "keep-alive" : "close")}\r\n\r\n");
        var sent = 0;
        while (sent < request.Length)
        {
            sent += await _socket.SendAsync(request.AsMemory(sent), SocketFlags.None);
        }
    }

    /// <summary>Reads one full response: status line, headers, and a Content-Length, chunked or read-to-close body.</summary>
    public async Task<RawHttpResponse> ReadResponseAsync(TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        using var cts = new CancellationTokenSource(limit);
        try
        {
            return await ReadResponseAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"No full response from {_socket.RemoteEndPoint} within {limit}.");
        }
    }

    public void Dispose() => _socket.Dispose();

    private async Task<RawHttpResponse> ReadResponseAsync(CancellationToken cancellationToken)
    {
        var statusLine = await ReadLineAsync(cancellationToken);
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || parts[0] != "HTTP/1.1" || parts[1].Length != 3 ||
            !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var statusCode))
        {
            throw new InvalidDataException($"Not an HTTP/1.1 status line: '{statusLine}'.");
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            var line = await ReadLineAsync(cancellationToken);
            if (line.Length == 0)
            {
                break;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new InvalidDataException($"Not a header line: '{line}'.");
            }

            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }

        string body;
        if (headers.TryGetValue("Transfer-Encoding", out var encoding))
        {
            if (!encoding.Equals("chunked", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidDataException($"Unsupported Transfer-Encoding '{encoding}'.");
            }

            body = await ReadChunkedAsync(cancellationToken);
        }
        else if (headers.TryGetValue("Content-Length", out var lengthText))
        {
            var length = int.Parse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture);
            body = Encoding.UTF8.GetString(await ReadExactlyAsync(length, cancellationToken));
        }
        else if (statusCode is 204 or 304 || statusCode < 200)
        {
            body = string.Empty;
        }
        else
        {
            body = Encoding.UTF8.GetString(await ReadToEndAsync(cancellationToken));
        }

        return new RawHttpResponse(statusCode, parts.Length > 2 ? parts[2] : string.Empty, headers, body);
    }

    private async Task<string> ReadChunkedAsync(CancellationToken cancellationToken)
    {
        var body = new List<byte>();
        while (true)
        {
            var sizeLine = await ReadLineAsync(cancellationToken);
            var semicolon = sizeLine.IndexOf(';', StringComparison.Ordinal);
            var sizeText = semicolon >= 0 ? sizeLine[..semicolon] : sizeLine;
            if (!int.TryParse(sizeText.Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var size) || size < 0)
            {
                throw new InvalidDataException($"Not a chunk size line: '{sizeLine}'.");
            }

            if (size == 0)
            {
                // Trailers, then the empty line.
                while ((await ReadLineAsync(cancellationToken)).Length != 0)
                {
                }

                return Encoding.UTF8.GetString(body.ToArray());
            }

            body.AddRange(await ReadExactlyAsync(size, cancellationToken));
            if ((await ReadLineAsync(cancellationToken)).Length != 0)
            {
                throw new InvalidDataException("A chunk is not followed by CRLF.");
            }
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var index = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (index >= 0)
            {
                if (index == _start || _buffer[index - 1] != (byte)'\r')
                {
                    throw new InvalidDataException("A line does not end with CRLF.");
                }

                var line = Encoding.ASCII.GetString(_buffer, _start, index - 1 - _start);
                _start = index + 1;
                return line;
            }

            await FillAsync(cancellationToken);
        }
    }

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        while (_end - _start < count)
        {
            await FillAsync(cancellationToken);
        }

        var bytes = _buffer.AsSpan(_start, count).ToArray();
        _start += count;
        return bytes;
    }

    private async Task<byte[]> ReadToEndAsync(CancellationToken cancellationToken)
    {
        while (await TryFillAsync(cancellationToken))
        {
        }

        var bytes = _buffer.AsSpan(_start, _end - _start).ToArray();
        _start = _end;
        return bytes;
    }

    private async Task FillAsync(CancellationToken cancellationToken)
    {
        if (!await TryFillAsync(cancellationToken))
        {
            throw new IOException(
                $"{_socket.RemoteEndPoint} closed the connection before a full response ({_end - _start} unread bytes).");
        }
    }

    /// <summary>Reads more bytes; false at end of stream.</summary>
    private async Task<bool> TryFillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }

        var read = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
        _end += read;
        return read > 0;
    }
}
