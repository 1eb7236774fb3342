namespace LoadTimeline;

/// <summary>How a request failed; the same split as wrk's "Socket errors" line.</summary>
internal enum ErrorKind
{
    /// <summary>The connection could not be opened (refused, unreachable, TLS handshake failed).</summary>
    Connect = 0,

    /// <summary>The connection was reset, or ended before a full response.</summary>
    Read = 1,

    /// <summary>Sending the request failed.</summary>
    Write = 2,

    /// <summary>No full response within the timeout (connect included).</summary>
    Timeout = 3,
}
