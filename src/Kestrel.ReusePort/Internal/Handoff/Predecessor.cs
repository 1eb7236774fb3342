using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// The running instance this one took an endpoint's sockets from, over the still-open handoff connection: it can be
/// asked to drain and exit once this instance accepts on the sockets.
/// </summary>
internal sealed class Predecessor : IDisposable
{
    private readonly Socket _connection;

    public Predecessor(Socket connection, int processId, int version)
    {
        _connection = connection;
        ProcessId = processId;
        Version = version;
    }

    public int ProcessId { get; }

    /// <summary>The protocol version it speaks; only version 2 and later know the stop request.</summary>
    public int Version { get; }

    /// <summary>Asks it to drain and exit; true once it has acknowledged.</summary>
    public async Task<bool> RequestStopAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Version < 2)
        {
            return false;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteRequest(message, Version, HandoffProtocol.Stop);
        await _connection.SendAsync(message, SocketFlags.None, deadline.Token).ConfigureAwait(false);

        var read = 0;
        while (read < message.Length)
        {
            var n = await _connection.ReceiveAsync(message.AsMemory(read), SocketFlags.None, deadline.Token).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return HandoffProtocol.TryReadReply(message, Version, out var count) && count == 0;
    }

    public void Dispose() => _connection.Dispose();
}
