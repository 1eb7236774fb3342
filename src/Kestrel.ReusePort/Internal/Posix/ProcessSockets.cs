using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal.Posix;

/// <summary>
/// Reads from /proc which processes hold the listening sockets of an endpoint, and which abstract Unix sockets they
/// listen on.
/// </summary>
/// <remarks>
/// /proc/net/tcp and /proc/net/unix are readable by everyone, but a process's descriptor table (/proc/PID/fd) only by
/// its own user and root. So only a process of the same user can learn which abstract socket belongs to which holder,
/// and a process of another user cannot make its sockets look like a holder's: it cannot hold the endpoint's listening
/// sockets (the kernel shares a port only within one user) nor put a socket into another user's descriptor table.
/// </remarks>
internal static class ProcessSockets
{
    private const uint UnixAcceptingConnections = 0x10000;

    /// <summary>Processes other than this one that hold a listening socket of <paramref name="endpoint"/>, with every socket they hold.</summary>
    public static List<(int ProcessId, HashSet<ulong> Sockets)> HoldersOf(IPEndPoint endpoint)
    {
        var listening = ListeningInodes(endpoint);
        var holders = new List<(int, HashSet<ulong>)>();
        if (listening.Count == 0)
        {
            return holders;
        }

        foreach (var directory in EnumerateOrEmpty("/proc", directories: true))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            var sockets = SocketInodesOf(directory);
            if (sockets.Overlaps(listening))
            {
                holders.Add((pid, sockets));
            }
        }

        return holders;
    }

    /// <summary>Whether any socket listens on <paramref name="endpoint"/>: /proc/net/tcp shows every user's, in this network namespace.</summary>
    public static bool HasListeners(IPEndPoint endpoint) => ListeningInodes(endpoint).Count > 0;

    /// <summary>Abstract Unix sockets accepting connections whose name starts with <paramref name="prefix"/>: inode and name.</summary>
    public static List<(ulong Inode, string Name)> ListeningAbstractSockets(string prefix)
    {
        return ParseAbstractSockets(ReadLinesOrEmpty("/proc/net/unix"), prefix);
    }

    /// <summary>The accepting abstract sockets named <paramref name="prefix"/>… in the lines of /proc/net/unix.</summary>
    internal static List<(ulong Inode, string Name)> ParseAbstractSockets(IEnumerable<string> lines, string prefix)
    {
        var found = new List<(ulong, string)>();

        // "Num RefCount Protocol Flags Type St Inode Path"; an abstract name is shown with a leading '@'.
        foreach (var line in lines)
        {
            var fields = line.Split(' ', 8, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 8
                && fields[7].StartsWith('@') && fields[7].AsSpan(1).StartsWith(prefix, StringComparison.Ordinal)
                && uint.TryParse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var flags) && (flags & UnixAcceptingConnections) != 0
                && ulong.TryParse(fields[6], NumberStyles.None, CultureInfo.InvariantCulture, out var inode))
            {
                found.Add((inode, fields[7][1..]));
            }
        }

        return found;
    }

    private static HashSet<ulong> ListeningInodes(IPEndPoint endpoint) =>
        ParseListeningInodes(ReadLinesOrEmpty(endpoint.AddressFamily == AddressFamily.InterNetworkV6 ? "/proc/net/tcp6" : "/proc/net/tcp"), endpoint);

    /// <summary>The inodes of the sockets listening on <paramref name="endpoint"/> in the lines of /proc/net/tcp or tcp6.</summary>
    internal static HashSet<ulong> ParseListeningInodes(IEnumerable<string> lines, IPEndPoint endpoint)
    {
        var inodes = new HashSet<ulong>();
        foreach (var entry in ParseTcpTable(lines))
        {
            if (entry.IsListening && entry.Port == endpoint.Port && entry.Address.Equals(endpoint.Address))
            {
                inodes.Add(entry.Inode);
            }
        }

        return inodes;
    }

    /// <summary>The sockets in the lines of /proc/net/tcp or tcp6; lines that are not a socket's are skipped.</summary>
    internal static IEnumerable<TcpTableEntry> ParseTcpTable(IEnumerable<string> lines)
    {
        // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
        foreach (var line in lines)
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 10)
            {
                continue;
            }

            var local = fields[1].Split(':');
            if (local.Length == 2
                && int.TryParse(local[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var port)
                && TryParseAddress(local[0], out var address)
                && ulong.TryParse(fields[9], NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
                && fields[4].Split(':') is [_, var received]
                && int.TryParse(received, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var receiveQueue))
            {
                yield return new TcpTableEntry(address, port, fields[3], inode, receiveQueue);
            }
        }
    }

    /// <summary>The inodes of the sockets a process holds (its /proc/PID/fd links <c>socket:[inode]</c>); empty when they cannot be read.</summary>
    internal static HashSet<ulong> SocketInodesOf(string processDirectory)
    {
        var inodes = new HashSet<ulong>();

        // Another user's table cannot be listed: that process is skipped, as it should be.
        foreach (var descriptor in EnumerateOrEmpty(Path.Join(processDirectory, "fd"), directories: false))
        {
            string? target;
            try
            {
                target = new FileInfo(descriptor).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && target.EndsWith(']')
                && ulong.TryParse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var inode))
            {
                inodes.Add(inode);
            }
        }

        return inodes;
    }

    /// <summary>The kernel prints an address as 32-bit words in host (little-endian) byte order.</summary>
    internal static bool TryParseAddress(string hex, out IPAddress address)
    {
        address = IPAddress.None;
        if (hex.Length is not (8 or 32))
        {
            return false;
        }

        var bytes = new byte[hex.Length / 2];
        for (var word = 0; word < hex.Length / 8; word++)
        {
            if (!uint.TryParse(hex.AsSpan(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            BitConverter.TryWriteBytes(bytes.AsSpan(word * 4, 4), value);
        }

        address = new IPAddress(bytes);
        return true;
    }

    private static string[] EnumerateOrEmpty(string directory, bool directories)
    {
        try
        {
            return directories ? Directory.GetDirectories(directory) : Directory.GetFiles(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string[] ReadLinesOrEmpty(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
