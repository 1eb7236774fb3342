namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Abstract Unix domain socket names in use, from /proc/net/unix (where an abstract name shows with a leading '@').
/// The handoff rendezvous of an endpoint is <c>@kestrel-reuseport/v1/uid-{euid}/{endpoint}</c>.
/// </summary>
public static class AbstractUnixSockets
{
    /// <summary>The rendezvous name of an endpoint as /proc/net/unix shows it.</summary>
    public static string RendezvousName(string endpoint, uint userId) => $"@kestrel-reuseport/v1/uid-{userId}/{endpoint}";

    /// <summary>The rendezvous name of an endpoint for this process's effective user.</summary>
    public static string RendezvousName(string endpoint) => RendezvousName(endpoint, LibC.GetEffectiveUserId());

    /// <summary>How many sockets (listening or connected) carry exactly this name.</summary>
    public static int Count(string name) =>
        File.ReadAllLines("/proc/net/unix").Skip(1).Count(line => PathOf(line) == name);

    /// <summary>Whether a listening socket (flag __SO_ACCEPTCON) is bound to exactly this name.</summary>
    public static bool IsListening(string name) =>
        File.ReadAllLines("/proc/net/unix").Skip(1).Any(line => PathOf(line) == name && IsListeningLine(line));

    // "Num RefCount Protocol Flags Type St Inode Path"
    private static string? PathOf(string line)
    {
        var fields = line.Split(' ', 8, StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 8 ? fields[7].Trim() : null;
    }

    private static bool IsListeningLine(string line)
    {
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 4 && (Convert.ToUInt32(fields[3], 16) & 0x10000) != 0;
    }
}
