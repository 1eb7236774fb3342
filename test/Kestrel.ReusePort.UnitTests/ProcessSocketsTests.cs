using System.Net;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.UnitTests;

/// <summary>Parsing the kernel's socket tables, as /proc/net/tcp, tcp6 and unix print them.</summary>
public sealed class ProcessSocketsTests
{
    private const string TcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    [Fact]
    public void ListeningSocketsOfTheEndpointAreFoundByAddressPortAndState()
    {
        string[] lines =
        [
            TcpHeader,
            // 127.0.0.1:5000 listening (state 0A), twice: an SO_REUSEPORT group.
            "   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0",
            "   1: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0",
            // The same port established (01): a connection, not a listener.
            "   2: 0100007F:1388 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1",
            // Another port, and another address on the same port.
            "   3: 0100007F:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0",
            "   4: 0200007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 100 0 0 10 0",
            "garbage",
        ];

        var inodes = ProcessSockets.ParseListeningInodes(lines, new IPEndPoint(IPAddress.Loopback, 5000));

        Assert.Equal([1001UL, 1002UL], inodes.Order());
    }

    [Fact]
    public void Ipv6AddressesAreReadAsTheKernelPrintsThem()
    {
        // ::1 is printed as four 32-bit words in host (little-endian) byte order.
        string[] lines =
        [
            TcpHeader,
            "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0",
            "   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0",
        ];

        Assert.Equal([2001UL], ProcessSockets.ParseListeningInodes(lines, new IPEndPoint(IPAddress.IPv6Loopback, 8080)));
        Assert.Equal([2002UL], ProcessSockets.ParseListeningInodes(lines, new IPEndPoint(IPAddress.IPv6Any, 8080)));
    }

    [Theory]
    [InlineData("0100007F", "127.0.0.1")]
    [InlineData("00000000", "0.0.0.0")]
    [InlineData("0100A8C0", "192.168.0.1")]
    [InlineData("00000000000000000000000001000000", "::1")]
    [InlineData("B80D0120000000000000000001000000", "2001:db8::1")]
    public void AddressesAreDecoded(string hex, string expected)
    {
        Assert.True(ProcessSockets.TryParseAddress(hex, out var address));
        Assert.Equal(IPAddress.Parse(expected), address);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0100007")]
    [InlineData("GGGGGGGG")]
    public void MalformedAddressesAreRefused(string hex) => Assert.False(ProcessSockets.TryParseAddress(hex, out _));

    [Fact]
    public void OnlyAcceptingAbstractSocketsWithThePrefixAreFound()
    {
        string[] lines =
        [
            "Num       RefCount Protocol Flags    Type St Inode Path",
            // Listening (flag __SO_ACCEPTCON) abstract sockets: one with the prefix, one without.
            "0000000000000000: 00000002 00000000 00010000 0001 01 3001 @kestrel-reuseport/a1b2",
            "0000000000000000: 00000002 00000000 00010000 0001 01 3002 @other/a1b2",
            // A connected abstract socket with the prefix, and a path socket.
            "0000000000000000: 00000003 00000000 00000000 0001 03 3003 @kestrel-reuseport/c3d4",
            "0000000000000000: 00000002 00000000 00010000 0001 01 3004 /run/kestrel-reuseport/x.sock",
            // An unnamed socket has no path field.
            "0000000000000000: 00000002 00000000 00000000 0002 01 3005",
        ];

        var found = ProcessSockets.ParseAbstractSockets(lines, "kestrel-reuseport/");

        Assert.Equal([(3001UL, "kestrel-reuseport/a1b2")], found);
    }
}
