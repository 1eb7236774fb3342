using System;
using System.Globalization;
using System.IO;
using System.Linq;

namespace CountersSnapshot;

/// <summary>
/// The diagnostic socket of one process, found by its exact name. The runtime listens on
/// <c>$TMPDIR/dotnet-diagnostic-{pid}-{start time}-socket</c>, where pid is the pid the process sees (its pid in its
/// own pid namespace) and the start time is field 22 of <c>/proc/self/stat</c>. <c>new DiagnosticsClient(pid)</c>
/// takes the newest <c>dotnet-diagnostic-{pid}-*-socket</c> instead, which in a shared /tmp can be another process's:
/// every process started in a pid namespace of its own (<c>unshare --pid</c>, a container sharing /tmp) is pid 1 there,
/// and a dead process's socket stays behind when it is killed. The exact name tells them apart.
/// </summary>
internal sealed record DiagnosticEndpoint(string? SocketPath, string Problem)
{
    public static DiagnosticEndpoint Resolve(int pid)
    {
        var proc = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}";
        if (!Directory.Exists(proc))
        {
            return new(null, $"no process with pid {pid}");
        }

        string stat;
        string status;
        try
        {
            stat = File.ReadAllText($"{proc}/stat");
            status = File.ReadAllText($"{proc}/status");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new(null, $"cannot read {proc}/stat: {ex.Message}");
        }

        // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, start time 22.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        if (fields.Length < 20)
        {
            return new(null, $"cannot parse {proc}/stat");
        }

        var startTime = fields[19];

        // NSpid lists the pid in each pid namespace, the process's own last.
        var nsPidLine = status.Split('\n').FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
        var ownPid = nsPidLine?.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? pid.ToString(CultureInfo.InvariantCulture);
        var nested = ownPid != pid.ToString(CultureInfo.InvariantCulture);

        var tmp = TempFolderOf(proc) ?? "/tmp";
        var name = $"dotnet-diagnostic-{ownPid}-{startTime}-socket";

        // Through the process's root: its own /tmp when it has a mount namespace of its own, the same file otherwise.
        foreach (var folder in new[] { Path.Combine($"{proc}/root", tmp.TrimStart('/')), tmp }.Distinct())
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path))
            {
                return new(path, "");
            }
        }

        return new(null,
            $"found no socket {Path.Combine(tmp, name)}{(nested ? $" (pid {ownPid} in its own pid namespace)" : "")}: the process is not .NET, " +
            "runs with DOTNET_EnableDiagnostics=0 (or _IPC=0), or its socket was removed");
    }

    /// <summary>TMPDIR from <c>/proc/PID/environ</c>, when set and readable.</summary>
    private static string? TempFolderOf(string proc)
    {
        try
        {
            var variable = File.ReadAllText($"{proc}/environ").Split('\0').FirstOrDefault(v => v.StartsWith("TMPDIR=", StringComparison.Ordinal));
            return variable is { Length: > 7 } ? variable[7..] : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
