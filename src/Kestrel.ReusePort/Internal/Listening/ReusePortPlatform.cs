using System;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Whether the kernel spreads connections over the SO_REUSEPORT sockets of a port, and what to do where it does not.
/// </summary>
internal static class ReusePortPlatform
{
    private static readonly Lazy<bool> s_isLoadBalancingSupported = new(Probe);

    /// <summary>
    /// Linux 3.9 and later balance SO_REUSEPORT groups. Other systems either lack the option or give every connection
    /// to one socket, which would look like sharing while starving the other processes.
    /// </summary>
    public static bool IsLoadBalancingSupported => s_isLoadBalancingSupported.Value;

    public static ReusePortMode Decide(bool isLoadBalancingSupported, UnsupportedPlatformBehavior behavior) =>
        isLoadBalancingSupported ? ReusePortMode.ReusePort
        : behavior == UnsupportedPlatformBehavior.Throw ? ReusePortMode.Throw
        : ReusePortMode.StockSockets;

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        // A kernel older than 3.9 answers ENOPROTOOPT; asking is the only reliable check.
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            ListenSocketBinder.EnableReusePort(socket);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
