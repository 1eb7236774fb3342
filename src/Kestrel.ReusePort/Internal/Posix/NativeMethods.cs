using System;
using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Internal.Posix;

/// <summary>
/// The few Linux calls .NET has no API for: the effective user id, sendmsg/recvmsg to pass descriptors, and the file
/// calls a private rendezvous directory needs (open without following links, the owner of a file, flock).
/// </summary>
/// <remarks>
/// The structure layouts are those of 64-bit Linux (glibc and musl agree on them once padding is zeroed); statx has the
/// same layout on every architecture, unlike struct stat. <see cref="IsSupported"/> keeps every other platform away.
/// </remarks>
internal static unsafe partial class NativeMethods
{
    private const string LibC = "libc";

    public const int SolSocket = 1;
    public const int SoReuseAddr = 2;
    public const int SoReusePort = 15;
    public const int SoPeerCred = 17;
    public const int ScmRights = 1;
    public const int IPProtoTcp = 6;
    public const int TcpInfo = 11;
    public const int TcpDeferAccept = 9;
    public const int TcpFastOpen = 23;
    public const int MsgCTrunc = 0x8;
    public const int MsgNoSignal = 0x4000;
    public const int MsgCmsgCloexec = 0x40000000;

    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EPIPE = 32;
    public const int ECONNRESET = 104;
    public const int EEXIST = 17;

    public const int ORdWr = 2;
    public const int OCreat = 0x40;
    public const int OCloexec = 0x80000;
    public const int OPath = 0x200000;

    public const int LockExclusive = 2;
    public const int LockNonBlocking = 4;

    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtEmptyPath = 0x1000;
    public const uint StatxBasicStats = 0x7ff;

    public const ushort SIfMt = 0xF000;
    public const ushort SIfDir = 0x4000;
    public const ushort SIfLnk = 0xA000;
    public const ushort SIsVtx = 0x200;

    public static bool IsSupported => OperatingSystem.IsLinux() && IntPtr.Size == 8;

    // O_DIRECTORY and O_NOFOLLOW are the only open flags whose values differ between x86-64 and arm64.
    public static int ODirectory => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x10000 : 0x4000;

    public static int ONoFollow => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x20000 : 0x8000;

    [LibraryImport(LibC, EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport(LibC, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMessage(int socket, MessageHeader* message, int flags);

    [LibraryImport(LibC, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint ReceiveMessage(int socket, MessageHeader* message, int flags);

    [LibraryImport(LibC, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int DuplicateDescriptor(int fd, int command, int lowest);

    [LibraryImport(LibC, EntryPoint = "getrlimit", SetLastError = true)]
    public static partial int GetResourceLimit(int resource, ulong* limits);

    [LibraryImport(LibC, EntryPoint = "flock", SetLastError = true)]
    public static partial int FLock(int fd, int operation);

    [LibraryImport(LibC, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, StatxBuffer* buffer);

    [LibraryImport(LibC, EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MakeDirectory(string path, uint mode);

    [LibraryImport(LibC, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Unlink(string path);

    [LibraryImport(LibC, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(string oldPath, string newPath);

    /// <summary>An exception for the errno of the last call, naming what failed.</summary>
    public static System.IO.IOException LastError(string operation) => Error(Marshal.GetLastPInvokeError(), operation);

    public static System.IO.IOException Error(int errno, string operation) =>
        new($"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");

    /// <summary>The owner, type and inode of a file, not following a final symbolic link; null with errno set on failure.</summary>
    public static FileStatus? StatNoFollow(string path) => Stat(AtFdCwd, path, AtSymlinkNoFollow);

    /// <summary>The owner, type and inode of an open descriptor.</summary>
    public static FileStatus? StatDescriptor(int fd) => Stat(fd, string.Empty, AtEmptyPath);

    private static FileStatus? Stat(int dirfd, string path, int flags)
    {
        StatxBuffer buffer;
        if (Statx(dirfd, path, flags, StatxBasicStats, &buffer) != 0)
        {
            return null;
        }

        return new FileStatus(buffer.UserId, buffer.Mode, buffer.Inode, ((ulong)buffer.DeviceMajor << 32) | buffer.DeviceMinor);
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IOVector
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IOVector* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ControlMessageHeader
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary>struct statx: 256 bytes, the same on every architecture; only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(20)]
        public uint UserId;

        [FieldOffset(28)]
        public ushort Mode;

        [FieldOffset(32)]
        public ulong Inode;

        [FieldOffset(136)]
        public uint DeviceMajor;

        [FieldOffset(140)]
        public uint DeviceMinor;
    }

    /// <summary>CMSG_LEN: the header plus <paramref name="dataLength"/> bytes, unpadded.</summary>
    public static int ControlMessageLength(int dataLength) => sizeof(ControlMessageHeader) + dataLength;

    /// <summary>CMSG_SPACE: the header plus <paramref name="dataLength"/> bytes, padded to the size of a pointer.</summary>
    public static int ControlMessageSpace(int dataLength) => sizeof(ControlMessageHeader) + ((dataLength + 7) & ~7);
}
