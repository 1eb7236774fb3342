using System;
using System.Buffers;
using System.Globalization;
using System.IO;
using System.Text;

namespace Kestrel.ReusePort.Shared;

/// <summary>
/// An incremental HTTP/1.1 response parser: the status code, <c>Connection: close</c>, and the end of the body (by
/// Content-Length, by chunks, or by the end of the connection). Fed any split of the bytes; copies a body only when
/// given somewhere to put it, so that a load generator parses a response without allocating.
/// </summary>
internal struct Http1ResponseParser
{
    private static readonly SearchValues<byte> HexDigits = SearchValues.Create("0123456789abcdefABCDEF"u8);

    private State _state;
    private long _remaining;      // body bytes left: of the Content-Length, or of the current chunk
    private int _scanned;         // header bytes already searched for the blank line

    private enum State
    {
        Headers,
        Body,
        ChunkSize,
        ChunkData,
        ChunkDataEnd,
        Trailers,
        UntilClose,
        Done,
    }

    /// <summary>The status code, once the header block is parsed.</summary>
    public int StatusCode { get; private set; }

    /// <summary>Whether the connection ends after this response: the server said <c>Connection: close</c>, or the
    /// body runs until the close.</summary>
    public bool ConnectionClose { get; private set; }

    /// <summary>Whether the body runs until the server closes the connection (neither a length nor chunked).</summary>
    public readonly bool UntilClose => _state == State.UntilClose;

    /// <summary>Whether the whole response has been parsed.</summary>
    public readonly bool Complete => _state == State.Done;

    /// <summary>Starts over, for the next response.</summary>
    public void Reset() => this = default;

    /// <summary>
    /// Parses the next bytes of the response and returns how many it used: none while <paramref name="data"/> does
    /// not hold the whole header block yet (pass them again, with more), and fewer than given once the response is
    /// complete (the rest belongs to what follows). The body's bytes, de-chunked, go to <paramref name="body"/> when
    /// given. Throws <see cref="InvalidDataException"/> for a malformed response.
    /// </summary>
    public int Parse(ReadOnlySpan<byte> data, IBufferWriter<byte>? body = null)
    {
        int used = 0;
        if (_state == State.Headers)
        {
            // The blank line may straddle the bytes already searched: look again from 3 bytes before their end.
            int from = Math.Max(0, _scanned - 3);
            int end = data[from..].IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                _scanned = data.Length;
                return 0;
            }

            used = from + end + 4;
            ParseHeaderBlock(data[..used]);
        }

        while (used < data.Length)
        {
            ReadOnlySpan<byte> rest = data[used..];
            switch (_state)
            {
                case State.Body:
                case State.ChunkData:
                {
                    int take = (int)Math.Min(_remaining, rest.Length);
                    body?.Write(rest[..take]);
                    _remaining -= take;
                    used += take;
                    if (_remaining == 0)
                    {
                        _state = _state == State.Body ? State.Done : State.ChunkDataEnd;
                    }

                    break;
                }

                case State.UntilClose:
                    body?.Write(rest);
                    used = data.Length;
                    break;

                case State.ChunkSize:
                case State.ChunkDataEnd:
                case State.Trailers:
                {
                    int lineEnd = rest.IndexOf("\r\n"u8);
                    if (lineEnd < 0)
                    {
                        // A line not whole yet: waits for more (a lone CR at the end may be the start of the CRLF).
                        return used;
                    }

                    ParseLine(rest[..lineEnd]);
                    used += lineEnd + 2;
                    break;
                }

                default:
                    return used;
            }
        }

        return used;
    }

    /// <summary>The server closed the connection: completes a body that runs until the close. Returns
    /// <see cref="Complete"/>.</summary>
    public bool EndOfStream()
    {
        if (_state == State.UntilClose)
        {
            _state = State.Done;
        }

        return Complete;
    }

    private void ParseLine(ReadOnlySpan<byte> line)
    {
        switch (_state)
        {
            case State.ChunkSize:
            {
                // chunk-size [ ; extensions ]: the extensions are skipped.
                int digits = line.IndexOfAnyExcept(HexDigits);
                if (digits < 0)
                {
                    digits = line.Length;
                }
                else if (line[digits] is not ((byte)';' or (byte)' ' or (byte)'\t'))
                {
                    throw new InvalidDataException($"Not a chunk size line: '{Text(line)}'.");
                }

                if (digits is 0 or > 15)
                {
                    throw new InvalidDataException($"Not a chunk size line: '{Text(line)}'.");
                }

                _remaining = long.Parse(line[..digits], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
                _state = _remaining == 0 ? State.Trailers : State.ChunkData;
                break;
            }

            case State.ChunkDataEnd:
                if (!line.IsEmpty)
                {
                    throw new InvalidDataException("A chunk is longer than its size or not followed by CRLF.");
                }

                _state = State.ChunkSize;
                break;

            default:
                // Trailer fields are skipped; the blank line ends the response.
                if (line.IsEmpty)
                {
                    _state = State.Done;
                }

                break;
        }
    }

    private void ParseHeaderBlock(ReadOnlySpan<byte> block)
    {
        // "HTTP/1.1 200 OK\r\n": the reason phrase is optional.
        int lineEnd = block.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> statusLine = block[..lineEnd];
        if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1."u8) || statusLine[8] != (byte)' ' ||
            !int.TryParse(statusLine.Slice(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out int status) ||
            (statusLine.Length > 12 && statusLine[12] != (byte)' '))
        {
            throw new InvalidDataException($"Not an HTTP/1.x status line: '{Text(statusLine)}'.");
        }

        StatusCode = status;
        long contentLength = -1;
        bool chunked = false;
        bool close = false;
        ReadOnlySpan<byte> lines = block[(lineEnd + 2)..];
        while (true)
        {
            int end = lines.IndexOf("\r\n"u8);
            if (end <= 0)
            {
                break;
            }

            ReadOnlySpan<byte> line = lines[..end];
            lines = lines[(end + 2)..];
            int colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                throw new InvalidDataException($"Not a header line: '{Text(line)}'.");
            }

            ReadOnlySpan<byte> name = line[..colon];
            ReadOnlySpan<byte> value = line[(colon + 1)..].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out contentLength))
                {
                    throw new InvalidDataException($"Not a Content-Length: '{Text(value)}'.");
                }
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                chunked = ContainsIgnoreCase(value, "chunked"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                close = ContainsIgnoreCase(value, "close"u8);
            }
        }

        ConnectionClose = close;
        if (status is (>= 100 and < 200) or 204 or 304)
        {
            _state = State.Done;
        }
        else if (chunked)
        {
            _state = State.ChunkSize;
        }
        else if (contentLength >= 0)
        {
            _remaining = contentLength;
            _state = contentLength == 0 ? State.Done : State.Body;
        }
        else
        {
            _state = State.UntilClose;
            ConnectionClose = true;
        }
    }

    private static bool ContainsIgnoreCase(ReadOnlySpan<byte> value, ReadOnlySpan<byte> token)
    {
        for (int i = 0; i + token.Length <= value.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(value.Slice(i, token.Length), token))
            {
                return true;
            }
        }

        return false;
    }

    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(bytes);
}
