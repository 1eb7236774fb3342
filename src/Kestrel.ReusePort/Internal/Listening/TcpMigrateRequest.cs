using System;
using System.IO;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Reads <c>net.ipv4.tcp_migrate_req</c>: when 1 (Linux 5.14+), closing one socket of a SO_REUSEPORT group moves the
/// connections queued on it to another socket of the group instead of resetting them.
/// </summary>
internal static class TcpMigrateRequest
{
    private const string Path = "/proc/sys/net/ipv4/tcp_migrate_req";

    /// <summary>The setting, or <see langword="null"/> where the kernel has none.</summary>
    public static int? Read()
    {
        try
        {
            return int.TryParse(File.ReadAllText(Path).AsSpan().Trim(), out var value) ? value : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
