using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Handoff.Protocol;

namespace Kestrel.ReusePort.UnitTests;

public sealed class HandoffProtocolTests
{
    [Theory]
    [InlineData(HandoffProtocol.TakeOver)]
    [InlineData(HandoffProtocol.Watch)]
    [InlineData(HandoffProtocol.Stop)]
    public void ARequestOfTheCurrentVersionIsReadBack(byte kind)
    {
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteRequest(message, HandoffProtocol.CurrentVersion, kind);

        Assert.True(HandoffProtocol.TryReadRequest(message, out var read));
        Assert.Equal(kind, read);
    }

    [Fact]
    public void ARequestOfAnotherVersionOrWithoutTheMagicIsRefused()
    {
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteRequest(message, HandoffProtocol.CurrentVersion - 1, HandoffProtocol.TakeOver);
        Assert.False(HandoffProtocol.TryReadRequest(message, out _));

        HandoffProtocol.WriteRequest(message, HandoffProtocol.CurrentVersion, HandoffProtocol.TakeOver);
        message[0] = (byte)'X';
        Assert.False(HandoffProtocol.TryReadRequest(message, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(255)]
    public void AnUnknownKindOrALengthOtherThanEightIsRefused(byte kind)
    {
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteRequest(message, HandoffProtocol.CurrentVersion, kind);
        Assert.False(HandoffProtocol.TryReadRequest(message, out _));

        var longer = new byte[HandoffProtocol.MessageLength + 1];
        HandoffProtocol.WriteRequest(longer, HandoffProtocol.CurrentVersion, HandoffProtocol.TakeOver);
        Assert.False(HandoffProtocol.TryReadRequest(longer, out _));
    }

    [Fact]
    public void AStopRequestCarriesWhenItsSenderStarted()
    {
        var message = new byte[HandoffProtocol.StopMessageLength];
        HandoffProtocol.WriteStopRequest(message, HandoffProtocol.CurrentVersion, startedAt: 1_234_567_890_123L);

        Assert.True(HandoffProtocol.TryReadStopRequest(message, out var startedAt));
        Assert.Equal(1_234_567_890_123L, startedAt);

        // The first 8 bytes are an ordinary request of kind Stop; a take-over request is no stop request.
        Assert.True(HandoffProtocol.TryReadRequest(message.AsSpan(0, HandoffProtocol.MessageLength), out var kind));
        Assert.Equal(HandoffProtocol.Stop, kind);
        HandoffProtocol.WriteRequest(message, HandoffProtocol.CurrentVersion, HandoffProtocol.TakeOver);
        Assert.False(HandoffProtocol.TryReadStopRequest(message, out _));
        Assert.False(HandoffProtocol.TryReadStopRequest(message.AsSpan(0, HandoffProtocol.MessageLength), out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(DescriptorPassing.MaxDescriptors)]
    public void AReplyCarriesTheSocketCount(int count)
    {
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteReply(message, HandoffProtocol.CurrentVersion, count);

        Assert.True(HandoffProtocol.TryReadReply(message, HandoffProtocol.CurrentVersion, out var read));
        Assert.Equal(count, read);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(DescriptorPassing.MaxDescriptors + 1)]
    public void AReplyWithACountOutOfRangeIsRefused(int count)
    {
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteReply(message, HandoffProtocol.CurrentVersion, count);
        Assert.False(HandoffProtocol.TryReadReply(message, HandoffProtocol.CurrentVersion, out _));
    }

    [Fact]
    public void AReplyIsReadOnlyForTheVersionThatWasAsked()
    {
        var message = new byte[HandoffProtocol.MessageLength];
        HandoffProtocol.WriteReply(message, version: 1, count: 2);

        Assert.True(HandoffProtocol.TryReadReply(message, 1, out _));
        Assert.False(HandoffProtocol.TryReadReply(message, HandoffProtocol.CurrentVersion, out _));
    }

    [Fact]
    public void TheMonotonicClockMovesForward()
    {
        var first = HandoffProtocol.MonotonicNow();
        var second = HandoffProtocol.MonotonicNow();
        Assert.True(first > 0);
        Assert.True(second >= first);
    }

    [Fact]
    public async Task AMessageIsReadWholeThoughItArrivesInPiecesAndNotWhenThePeerLeavesFirst()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();

        var message = new byte[HandoffProtocol.MessageLength];
        var receiving = HandoffProtocol.ReceiveAsync(server, message, CancellationToken.None).AsTask();
        await client.SendAsync("KRP2"u8.ToArray(), SocketFlags.None);
        Assert.False(receiving.IsCompleted);
        await client.SendAsync(new byte[] { 1, 0, 0, 0 }, SocketFlags.None);
        Assert.True(await receiving);
        Assert.True(HandoffProtocol.TryReadRequest(message, out var kind));
        Assert.Equal(HandoffProtocol.TakeOver, kind);

        await client.SendAsync("KRP"u8.ToArray(), SocketFlags.None);
        client.Shutdown(SocketShutdown.Send);
        Assert.False(await HandoffProtocol.ReceiveAsync(server, message, CancellationToken.None));
    }
}
