using System.Net;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Picks TCP ports for servers that cannot bind port 0 themselves (child processes, localhost, handoff on a fixed port).
/// </summary>
/// <remarks>
/// Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port picked by binding port 0
/// would be an ephemeral one, which the thousands of client connections of the tests may take as their source port
/// between the pick and the server's bind. A port is handed out once per test run, and only if nothing on this machine
/// uses it (no /proc/net/tcp entry in any state, and a trial bind succeeds).
/// </remarks>
public static class PortAllocator
{
    private const int LowestPort = 20000;
    private static readonly HashSet<int> s_handedOut = [];
    private static readonly Lazy<int> s_ephemeralStart = new(ReadEphemeralStart);

    /// <summary>A port free on 127.0.0.1 and, if <paramref name="alsoIPv6Loopback"/>, on [::1] too.</summary>
    public static int GetFreePort(bool alsoIPv6Loopback = false)
    {
        var highest = s_ephemeralStart.Value - 1;
        if (highest <= LowestPort + 1000)
        {
            return GetFreeEphemeralPort(alsoIPv6Loopback);
        }

        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(LowestPort, highest + 1);
            lock (s_handedOut)
            {
                if (s_handedOut.Contains(port) || ListeningSockets.IsPortInUse(port) || !CanBind(port, alsoIPv6Loopback))
                {
                    continue;
                }

                s_handedOut.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException("Found no free port.");
    }

    private static int GetFreeEphemeralPort(bool alsoIPv6Loopback)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            int port;
            using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)socket.LocalEndPoint!).Port;
            }

            lock (s_handedOut)
            {
                if (s_handedOut.Add(port) && (!alsoIPv6Loopback || CanBind(port, alsoIPv6Loopback)))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException("Found no free port.");
    }

    private static bool CanBind(int port, bool alsoIPv6Loopback)
    {
        var sockets = new List<Socket>();
        try
        {
            sockets.Add(BindProbe(IPAddress.Loopback, port));
            if (alsoIPv6Loopback)
            {
                sockets.Add(BindProbe(IPAddress.IPv6Loopback, port));
            }

            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private static Socket BindProbe(IPAddress address, int port)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static int ReadEphemeralStart()
    {
        try
        {
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range");
            return int.Parse(text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 32768;
        }
    }
}
