using System.Net;
using System.Net.Sockets;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>The tuning options reach the kernel on every socket of the group, and are off unless asked for.</summary>
public class TuningOptionsTests
{
    private const int IPProtoTcp = 6;
    private const int TcpDeferAccept = 9;
    private const int TcpFastOpen = 23;

    [Fact]
    public async Task DeferAcceptAndFastOpenAreSetOnEverySocket()
    {
        await using var listener = await DirectListener.BindAsync(new ReusePortSocketTransportOptions
        {
            ListenerCount = 3,
            DeferAccept = TimeSpan.FromMilliseconds(1500),
            FastOpenQueueLength = 64,
        });

        var sockets = ListeningSockets.OpenOwn(((IPEndPoint)listener.EndPoint).Port);
        Assert.Equal(3, sockets.Count);
        foreach (var socket in sockets)
        {
            // Whole seconds, rounded up; the kernel stores retransmissions and answers with a whole number of seconds.
            Assert.True(GetTcpOption(socket, TcpDeferAccept) >= 2, "TCP_DEFER_ACCEPT should be at least 2 s.");
            Assert.Equal(64, GetTcpOption(socket, TcpFastOpen));
        }
    }

    [Fact]
    public async Task TuningIsOffByDefault()
    {
        await using var listener = await DirectListener.BindAsync(new ReusePortSocketTransportOptions { ListenerCount = 2 });

        var sockets = ListeningSockets.OpenOwn(((IPEndPoint)listener.EndPoint).Port);
        Assert.Equal(2, sockets.Count);
        foreach (var socket in sockets)
        {
            Assert.Equal(0, GetTcpOption(socket, TcpDeferAccept));
            Assert.Equal(0, GetTcpOption(socket, TcpFastOpen));
        }
    }

    private static int GetTcpOption(Socket socket, int option)
    {
        Span<byte> value = stackalloc byte[sizeof(int)];
        Assert.Equal(sizeof(int), socket.GetRawSocketOption(IPProtoTcp, option, value));
        return BitConverter.ToInt32(value);
    }
}
