using System;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Where instances meet, and the two messages they exchange.
/// </summary>
/// <remarks>
/// The rendezvous is an abstract Unix domain socket: it lives in the network namespace, not the file system, so a
/// crashed instance leaves nothing stale behind and nothing needs cleaning. Its name carries the effective user id and
/// the endpoint, so each user's instances of one endpoint meet only each other. Anyone may bind any abstract name,
/// so both ends check the other's credentials (SO_PEERCRED) before they trust it.
/// <para>
/// Request, client to owner: magic "KRP1", kind (1 = hand me the sockets, 2 = tell me when you go), 3 reserved bytes.
/// Reply to kind 1: magic "KRP1", socket count (int32), with that many descriptors attached (SCM_RIGHTS).
/// A watcher's connection then stays open until the owner stops.
/// </para>
/// </remarks>
internal static class HandoffProtocol
{
    public const int MessageLength = 8;
    public const byte TakeOver = 1;
    public const byte Watch = 2;

    private static ReadOnlySpan<byte> Magic => "KRP1"u8;

    public static string RendezvousName(IPEndPoint endpoint, uint userId) =>
        string.Create(CultureInfo.InvariantCulture, $"kestrel-reuseport/v1/uid-{userId}/{endpoint}");

    public static UnixDomainSocketEndPoint RendezvousEndPoint(string name) => new("\0" + name);

    public static void WriteRequest(Span<byte> message, byte kind)
    {
        message.Clear();
        Magic.CopyTo(message);
        message[4] = kind;
    }

    public static bool TryReadRequest(ReadOnlySpan<byte> message, out byte kind)
    {
        kind = message.Length == MessageLength && message.StartsWith(Magic) ? message[4] : (byte)0;
        return kind is TakeOver or Watch;
    }

    public static void WriteReply(Span<byte> message, int socketCount)
    {
        Magic.CopyTo(message);
        BinaryPrimitives.WriteInt32LittleEndian(message[4..], socketCount);
    }

    public static bool TryReadReply(ReadOnlySpan<byte> message, out int socketCount)
    {
        socketCount = message.Length == MessageLength && message.StartsWith(Magic) ? BinaryPrimitives.ReadInt32LittleEndian(message[4..]) : -1;
        return socketCount is > 0 and <= DescriptorPassing.MaxDescriptors;
    }
}
