using System.Globalization;
using System.Net;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// What the kernel says is listening: LISTEN entries of /proc/net/tcp and /proc/net/tcp6, and which of those sockets a
/// process holds (its /proc/&lt;pid&gt;/fd links <c>socket:[inode]</c>). A socket handed to another process over
/// SCM_RIGHTS is one entry held by both.
/// </summary>
public static class ListeningSockets
{
    private const string ListenState = "0A";
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
    public static IReadOnlySet<long> SocketInodesHeldBy(int pid)
    {
        var inodes = new HashSet<long>();
        string[] descriptors;
        try
        {
            descriptors = Directory.GetFiles($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd");
        }
        catch (Exception e) when (e is DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            return inodes;
        }

        foreach (var descriptor in descriptors)
        {
            string? target;
            try
            {
                target = new FileInfo(descriptor).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Closed while we looked.
                continue;
            }

            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && target.EndsWith(']') &&
                long.TryParse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var inode))
            {
                inodes.Add(inode);
            }
        }

        return inodes;
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
        var entries = new List<Entry>();
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (FileNotFoundException)
        {
            return entries;
        }

        // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 10)
            {
                continue;
            }

            var local = fields[1].Split(':');
            entries.Add(new Entry(
                ParseAddress(local[0]),
                int.Parse(local[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                fields[3],
                long.Parse(fields[9], CultureInfo.InvariantCulture),
                int.Parse(fields[4].AsSpan(fields[4].IndexOf(':', StringComparison.Ordinal) + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
        }

        return entries;
    }

    /// <summary>The kernel prints the address as 32-bit words in host byte order.</summary>
    private static IPAddress ParseAddress(string hex)
    {
        var bytes = new byte[hex.Length / 2];
        for (var word = 0; word < hex.Length / 8; word++)
        {
            var value = uint.Parse(hex.AsSpan(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            BitConverter.TryWriteBytes(bytes.AsSpan(word * 4, 4), value);
        }

        return new IPAddress(bytes);
    }

    private readonly record struct Entry(IPAddress Address, int Port, string State, long Inode, int Queued);
}
