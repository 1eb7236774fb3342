namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>How a connection that was open when the drain began came to an end.</summary>
internal enum DrainOutcome
{
    /// <summary>A response carried <c>Connection: close</c> (HTTP/1.x), then the connection closed.</summary>
    ConnectionClose,

    /// <summary>The connection got GOAWAY (HTTP/2), then closed.</summary>
    GoAway,

    /// <summary>The client closed it without sending a request during the drain.</summary>
    ClientClosed,

    /// <summary>Still open and idle at the drain timeout: Kestrel's shutdown closed it.</summary>
    ClosedIdle,

    /// <summary>Still open with a request in flight at the drain timeout: Kestrel's shutdown cut it.</summary>
    Aborted,
}
