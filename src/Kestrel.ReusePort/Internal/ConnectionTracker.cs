using System.Threading;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Counts the connections this transport accepted that are still open, so that a drain can end as soon as none is.
/// </summary>
internal sealed class ConnectionTracker
{
    private long _open;

    public long OpenConnections => Interlocked.Read(ref _open);

    public void Track(ConnectionContext connection)
    {
        Interlocked.Increment(ref _open);
        connection.ConnectionClosed.UnsafeRegister(static state => Interlocked.Decrement(ref ((ConnectionTracker)state!)._open), this);
    }
}
