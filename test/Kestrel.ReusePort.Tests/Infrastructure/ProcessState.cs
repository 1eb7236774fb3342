namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>What /proc says of a process that is not a child of the tests (one started detached by a script).</summary>
public static class ProcessState
{
    /// <summary>
    /// Whether it runs. An exited process whose parent is gone lingers as a zombie until an init that reaps orphans
    /// collects it, which may take a while in a container; a zombie does not run.
    /// </summary>
    public static bool IsRunning(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
    }
}
