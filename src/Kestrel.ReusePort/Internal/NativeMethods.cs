using System;
using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// The few Linux calls .NET has no API for: the effective user id, and sendmsg/recvmsg to pass descriptors.
/// </summary>
/// <remarks>
/// The structure layouts are those of 64-bit Linux (glibc and musl agree on them once padding is zeroed);
/// <see cref="IsSupported"/> keeps every other platform away.
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
    public const int TcpDeferAccept = 9;
    public const int TcpFastOpen = 23;
    public const int MsgCTrunc = 0x8;
    public const int MsgNoSignal = 0x4000;
    public const int MsgCmsgCloexec = 0x40000000;

    public static bool IsSupported => OperatingSystem.IsLinux() && IntPtr.Size == 8;

    [LibraryImport(LibC, EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport(LibC, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMessage(int socket, MessageHeader* message, int flags);

    [LibraryImport(LibC, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint ReceiveMessage(int socket, MessageHeader* message, int flags);

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

    /// <summary>CMSG_LEN: the header plus <paramref name="dataLength"/> bytes, unpadded.</summary>
    public static int ControlMessageLength(int dataLength) => sizeof(ControlMessageHeader) + dataLength;

    /// <summary>CMSG_SPACE: the header plus <paramref name="dataLength"/> bytes, padded to the size of a pointer.</summary>
    public static int ControlMessageSpace(int dataLength) => sizeof(ControlMessageHeader) + ((dataLength + 7) & ~7);
}
