using System;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal.Handoff.Protocol;

/// <summary>
/// The messages instances exchange at the rendezvous.
/// </summary>
/// <remarks>
/// Every message is 8 bytes: magic <c>"KRP"</c> and the version digit, then 4 bytes.
/// <list type="bullet">
/// <item>Request, client to listener: kind (1 = hand me the sockets, 2 = tell me when you go, 3 = drain and exit), 3 zero bytes.</item>
/// <item>Reply to kind 1: the socket count (int32), with that many descriptors attached (SCM_RIGHTS). In version 2 the
/// client may then send kind 3 on the same connection, once it accepts on the sockets, followed by 8 more bytes: when
/// it started (int64, the monotonic clock's nanoseconds, which all processes of the machine share). The reply is 0
/// when the listener drains and exits, 1 when it refuses because it began serving only after the client started: then
/// both are new instances started together, and neither is the old one a deploy replaces.</item>
/// <item>Kind 2 gets no reply: the watcher's connection stays open until the listener leaves.</item>
/// </list>
/// Version 1 (the first release, abstract names only) knows kinds 1 and 2; a new instance still asks a version-1 instance
/// for its sockets once, so that the first deploy after an upgrade loses nothing.
/// </remarks>
internal static class HandoffProtocol
{
    public const int CurrentVersion = 2;
    public const int MessageLength = 8;
    public const int Backlog = 64;
    public const byte TakeOver = 1;
    public const byte Watch = 2;
    public const byte Stop = 3;
    public const int StopMessageLength = MessageLength + sizeof(long);
    public const int StopAccepted = 0;
    public const int StopRefused = 1;

    public static void WriteRequest(Span<byte> message, int version, byte kind)
    {
        message.Clear();
        WriteMagic(message, version);
        message[4] = kind;
    }

    public static bool TryReadRequest(ReadOnlySpan<byte> message, out byte kind)
    {
        kind = message.Length == MessageLength && HasMagic(message, CurrentVersion) ? message[4] : (byte)0;
        return kind is TakeOver or Watch or Stop;
    }

    public static void WriteStopRequest(Span<byte> message, int version, long startedAt)
    {
        WriteRequest(message, version, Stop);
        BinaryPrimitives.WriteInt64LittleEndian(message[MessageLength..], startedAt);
    }

    /// <summary>When the instance that sent a stop request started; false if it is not one.</summary>
    public static bool TryReadStopRequest(ReadOnlySpan<byte> message, out long startedAt)
    {
        startedAt = 0;
        if (message.Length != StopMessageLength || !TryReadRequest(message[..MessageLength], out var kind) || kind != Stop)
        {
            return false;
        }

        startedAt = BinaryPrimitives.ReadInt64LittleEndian(message[MessageLength..]);
        return true;
    }

    /// <summary>
    /// Reads a whole message from <paramref name="peer"/>; false if the peer closed the connection first. (Not a
    /// NetworkStream: passing descriptors leaves the socket non-blocking, which NetworkStream refuses.)
    /// </summary>
    public static async ValueTask<bool> ReceiveAsync(Socket peer, Memory<byte> message, CancellationToken cancellationToken)
    {
        for (var read = 0; read < message.Length;)
        {
            var received = await peer.ReceiveAsync(message[read..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (received == 0)
            {
                return false;
            }

            read += received;
        }

        return true;
    }

    /// <summary>The monotonic clock in nanoseconds: the same for every process of the machine (CLOCK_MONOTONIC).</summary>
    public static long MonotonicNow() => (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    public static void WriteReply(Span<byte> message, int version, int count)
    {
        WriteMagic(message, version);
        BinaryPrimitives.WriteInt32LittleEndian(message[4..], count);
    }

    public static bool TryReadReply(ReadOnlySpan<byte> message, int version, out int count)
    {
        count = message.Length == MessageLength && HasMagic(message, version) ? BinaryPrimitives.ReadInt32LittleEndian(message[4..]) : -1;
        return count is >= 0 and <= DescriptorPassing.MaxDescriptors;
    }

    private static void WriteMagic(Span<byte> message, int version)
    {
        "KRP"u8.CopyTo(message);
        message[3] = (byte)('0' + version);
    }

    private static bool HasMagic(ReadOnlySpan<byte> message, int version) =>
        message.StartsWith("KRP"u8) && message[3] == (byte)('0' + version);
}
