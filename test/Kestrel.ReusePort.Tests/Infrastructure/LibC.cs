using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>The few libc calls the tests need.</summary>
internal static partial class LibC
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();
}
