using System;

namespace LoadTimeline;

/// <summary>
/// An incremental HTTP/1.1 response parser, just enough for a load generator: the status line's code, the
/// Content-Length, Transfer-Encoding: chunked and Connection: close headers, and the end of the body (by length, by
/// chunks, or by the end of the connection). Bodies are skipped, never copied.
/// </summary>
internal struct ResponseParser
{
    private State _state;
    private long _remaining;      // body bytes left (content-length) or chunk bytes left
    private long _chunkSize;
    private int _digits;          // hex digits of the current chunk-size line
    private bool _extension;      // past the digits of the chunk-size line
    private int _lineLength;      // bytes of the current trailer line

    public int Status { get; private set; }

    public bool ConnectionClose { get; private set; }

    /// <summary>Whether the body runs until the server closes the connection (neither length nor chunked).</summary>
    public readonly bool UntilClose => _state == State.UntilClose;

    public readonly bool Complete => _state == State.Done;

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

    public void Reset()
    {
        this = default;
    }

    /// <summary>Parses the header block <paramref name="headers"/> (status line to the blank line, inclusive), then
    /// consumes <paramref name="rest"/>, the bytes after it. Returns false for a malformed response.</summary>
    public bool ParseHeaders(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> rest)
    {
        // "HTTP/1.1 200 OK\r\n"
        if (headers.Length < 12 || !headers.StartsWith("HTTP/1."u8) || headers[8] != (byte)' ')
        {
            return false;
        }

        int status = 0;
        for (int i = 9; i < 12; i++)
        {
            int digit = headers[i] - '0';
            if ((uint)digit > 9)
            {
                return false;
            }

            status = (status * 10) + digit;
        }

        Status = status;
        long contentLength = -1;
        bool chunked = false;
        bool close = false;
        int lineEnd = headers.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> lines = headers[(lineEnd + 2)..];
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
                continue;
            }

            ReadOnlySpan<byte> name = line[..colon];
            ReadOnlySpan<byte> value = line[(colon + 1)..].Trim((byte)' ');
            if (EqualsIgnoreCase(name, "content-length"u8))
            {
                long length = 0;
                foreach (byte b in value)
                {
                    int digit = b - '0';
                    if ((uint)digit > 9)
                    {
                        return false;
                    }

                    length = (length * 10) + digit;
                }

                contentLength = length;
            }
            else if (EqualsIgnoreCase(name, "transfer-encoding"u8))
            {
                chunked = ContainsIgnoreCase(value, "chunked"u8);
            }
            else if (EqualsIgnoreCase(name, "connection"u8))
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

        return Consume(rest);
    }

    /// <summary>Consumes body bytes; returns false for a malformed chunked body. Bytes after the end are ignored (no
    /// pipelining here).</summary>
    public bool Consume(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            switch (_state)
            {
                case State.Body:
                {
                    int take = (int)Math.Min(_remaining, data.Length);
                    _remaining -= take;
                    data = data[take..];
                    if (_remaining == 0)
                    {
                        _state = State.Done;
                    }

                    break;
                }

                case State.ChunkSize:
                {
                    byte b = data[0];
                    data = data[1..];
                    if (b == '\n')
                    {
                        if (_digits == 0)
                        {
                            return false;
                        }

                        _digits = 0;
                        _extension = false;
                        _remaining = _chunkSize;
                        _state = _chunkSize == 0 ? State.Trailers : State.ChunkData;
                    }
                    else if (!_extension)
                    {
                        int digit = HexDigit(b);
                        if (digit >= 0)
                        {
                            _chunkSize = (_chunkSize << 4) | (uint)digit;
                            _digits++;
                        }
                        else if (b is (byte)';' or (byte)'\r' or (byte)' ' or (byte)'\t')
                        {
                            _extension = true;     // chunk extensions, or the CR: skipped up to the LF
                        }
                        else
                        {
                            return false;
                        }
                    }

                    break;
                }

                case State.ChunkData:
                {
                    int take = (int)Math.Min(_remaining, data.Length);
                    _remaining -= take;
                    data = data[take..];
                    if (_remaining == 0)
                    {
                        _state = State.ChunkDataEnd;
                    }

                    break;
                }

                case State.ChunkDataEnd:
                {
                    byte b = data[0];
                    data = data[1..];
                    if (b == '\n')
                    {
                        _chunkSize = 0;
                        _state = State.ChunkSize;
                    }

                    break;
                }

                case State.Trailers:
                {
                    byte b = data[0];
                    data = data[1..];
                    if (b == '\n')
                    {
                        if (_lineLength == 0)
                        {
                            _state = State.Done;
                        }

                        _lineLength = 0;
                    }
                    else if (b != '\r')
                    {
                        _lineLength++;
                    }

                    break;
                }

                case State.UntilClose:
                    return true;
                default:
                    return true;
            }
        }

        return true;
    }

    /// <summary>The server closed the connection: completes a body that runs until the close.</summary>
    public void EndOfStream()
    {
        if (_state == State.UntilClose)
        {
            _state = State.Done;
        }
    }

    private static int HexDigit(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> lowerB)
    {
        if (a.Length != lowerB.Length)
        {
            return false;
        }

        for (int i = 0; i < a.Length; i++)
        {
            if ((a[i] | 0x20) != lowerB[i])
            {
                return false;
            }
        }

        return true;
    }

    private static bool ContainsIgnoreCase(ReadOnlySpan<byte> value, ReadOnlySpan<byte> lowerToken)
    {
        for (int i = 0; i + lowerToken.Length <= value.Length; i++)
        {
            if (EqualsIgnoreCase(value.Slice(i, lowerToken.Length), lowerToken))
            {
                return true;
            }
        }

        return false;
    }
}
