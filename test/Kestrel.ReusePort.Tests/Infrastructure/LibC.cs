using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>The few libc calls the tests need.</summary>
internal static unsafe partial class LibC
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>The inode of a file (not following a final link), to tell a replaced file from the same one.</summary>
    public static ulong Inode(string path)
    {
        // struct statx is 256 bytes on every architecture; stx_ino is at offset 32.
        var buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, 0x7ff, buffer) != 0)
        {
            throw new IOException($"statx({path}) failed: errno {Marshal.GetLastPInvokeError()}.");
        }

        return *(ulong*)(buffer + 32);
    }

    /// <summary>The owner's user id of a file (not following a final link).</summary>
    public static uint Owner(string path)
    {
        var buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, 0x7ff, buffer) != 0)
        {
            throw new IOException($"statx({path}) failed: errno {Marshal.GetLastPInvokeError()}.");
        }

        return *(uint*)(buffer + 20);
    }

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int LChown(string path, uint owner, uint group);
}
