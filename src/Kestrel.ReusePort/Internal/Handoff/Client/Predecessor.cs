using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Handoff.Protocol;

namespace Kestrel.ReusePort.Internal.Handoff.Client;

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

    /// <summary>
    /// Asks it to drain and exit, saying when this instance started (<paramref name="startedAt"/>, see
    /// <see cref="HandoffProtocol.MonotonicNow"/>). Returns its answer, or null if it gave none.
    /// </summary>
    public async Task<int?> RequestStopAsync(long startedAt, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Version < 2)
        {
            return null;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var request = new byte[HandoffProtocol.StopMessageLength];
        HandoffProtocol.WriteStopRequest(request, Version, startedAt);
        await _connection.SendAsync(request, SocketFlags.None, deadline.Token).ConfigureAwait(false);

        var reply = new byte[HandoffProtocol.MessageLength];
        return await HandoffProtocol.ReceiveAsync(_connection, reply, deadline.Token).ConfigureAwait(false)
            && HandoffProtocol.TryReadReply(reply, Version, out var answer) ? answer : null;
    }

    public void Dispose() => _connection.Dispose();
}
