namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>How the factory binds IP endpoints on this platform.</summary>
internal enum ReusePortMode
{
    /// <summary>Several SO_REUSEPORT sockets per endpoint.</summary>
    ReusePort,

    /// <summary>Kestrel's stock sockets transport, one socket per endpoint.</summary>
    StockSockets,

    /// <summary>Refuse to bind.</summary>
    Throw,
}
