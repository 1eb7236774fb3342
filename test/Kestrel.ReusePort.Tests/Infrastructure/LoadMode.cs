namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>How a <see cref="LoadGenerator"/> client uses connections.</summary>
public enum LoadMode
{
    /// <summary>Every request on a fresh connection, with <c>Connection: close</c>, as <c>wrk -H 'Connection: close'</c>.</summary>
    Churn,

    /// <summary>Requests back to back on one connection, a new one only after the server answered <c>Connection: close</c>.</summary>
    KeepAlive,
}
