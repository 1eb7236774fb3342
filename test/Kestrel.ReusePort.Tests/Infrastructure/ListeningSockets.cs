using System.Globalization;
using System.Net;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// What the kernel says is listening: LISTEN entries of /proc/net/tcp and /proc/net/tcp6, and which of those sockets a
/// process holds (its /proc/&lt;pid&gt;/fd links <c>socket:[inode]</c>). A socket handed to another process over
/// SCM_RIGHTS is one entry held by both.
/// </summary>
public static class ListeningSockets
{
    private const string ListenState = TcpTableEntry.ListenState;
    private const string EstablishedState = "01";

    /// <summary>Every listening TCP socket (IPv4 and IPv6) on <paramref name="port"/>.</summary>
    public static IReadOnlyList<ListeningSocket> OnPort(int port) =>
        [.. ReadEntries().Where(e => e.State == ListenState && e.Port == port).Select(e => new ListeningSocket(e.Address, e.Port, e.Inode))];

    /// <summary>The listening TCP sockets bound to <paramref name="address"/>:<paramref name="port"/>.</summary>
    public static IReadOnlyList<ListeningSocket> OnEndPoint(IPAddress address, int port) =>
        [.. OnPort(port).Where(s => s.Address.Equals(address))];

    /// <summary>The inodes of the established TCP sockets whose local port is <paramref name="port"/>: a server's accepted connections.</summary>
    public static IReadOnlySet<long> Established(int port) =>
        ReadEntries().Where(e => e.State == EstablishedState && e.Port == port).Select(e => e.Inode).ToHashSet();

    /// <summary>Whether any TCP socket (listening, connected or in TIME_WAIT) uses <paramref name="port"/> locally.</summary>
    public static bool IsPortInUse(int port) => ReadEntries().Any(e => e.Port == port);

    /// <summary>The inodes of every socket <paramref name="pid"/> holds a descriptor of; empty once it has exited.</summary>
    public static IReadOnlySet<long> SocketInodesHeldBy(int pid) =>
        ProcessSockets.SocketInodesOf($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}").Select(i => (long)i).ToHashSet();

    /// <summary>
    /// This process's listening sockets on <paramref name="port"/>, as <see cref="System.Net.Sockets.Socket"/> objects over
    /// the descriptors it holds (not owned: disposing them closes nothing), to read their options as the kernel has them.
    /// </summary>
    public static IReadOnlyList<System.Net.Sockets.Socket> OpenOwn(int port)
    {
        var listening = OnPort(port).Select(s => s.Inode).ToHashSet();
        var sockets = new List<System.Net.Sockets.Socket>();
        foreach (var descriptor in Directory.GetFiles("/proc/self/fd"))
        {
            var target = new FileInfo(descriptor).LinkTarget;
            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)
                && long.TryParse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var inode) && listening.Contains(inode)
                && int.TryParse(Path.GetFileName(descriptor), NumberStyles.None, CultureInfo.InvariantCulture, out var fd))
            {
                sockets.Add(new System.Net.Sockets.Socket(new System.Net.Sockets.SafeSocketHandle(fd, ownsHandle: false)));
            }
        }

        return sockets;
    }

    /// <summary>The listening sockets on <paramref name="port"/> that <paramref name="pid"/> holds.</summary>
    public static IReadOnlyList<ListeningSocket> HeldBy(int pid, int port)
    {
        var held = SocketInodesHeldBy(pid);
        return [.. OnPort(port).Where(s => held.Contains(s.Inode))];
    }

    /// <summary>
    /// How many connections wait in the accept queue of each listening socket on <paramref name="port"/>, by inode (for a
    /// listening socket the kernel prints the queue's length as its rx_queue).
    /// </summary>
    public static IReadOnlyDictionary<long, int> AcceptQueues(int port) =>
        ReadEntries().Where(e => e.State == ListenState && e.Port == port).ToDictionary(e => e.Inode, e => e.Queued);

    /// <summary>A readable summary of who holds which listening socket on the port, for assertion messages.</summary>
    public static string Describe(int port, params int[] pids)
    {
        var held = pids.ToDictionary(p => p, SocketInodesHeldBy);
        var lines = OnPort(port).Select(s =>
            $"{s} held by [{string.Join(", ", held.Where(h => h.Value.Contains(s.Inode)).Select(h => h.Key))}]");
        return $"LISTEN on port {port}: " + (lines.Any() ? string.Join("; ", lines) : "none");
    }

    private static IEnumerable<Entry> ReadEntries() => ReadTable("/proc/net/tcp").Concat(ReadTable("/proc/net/tcp6"));

    private static List<Entry> ReadTable(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (FileNotFoundException)
        {
            return [];
        }

        // The library's own parser: the tests read the kernel's tables exactly as the handoff does.
        return ProcessSockets.ParseTcpTable(lines).Select(e => new Entry(e.Address, e.Port, e.State, (long)e.Inode, e.ReceiveQueue)).ToList();
    }

    private readonly record struct Entry(IPAddress Address, int Port, string State, long Inode, int Queued);
}
