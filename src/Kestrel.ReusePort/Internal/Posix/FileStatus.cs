namespace Kestrel.ReusePort.Internal.Posix;

/// <summary>What <c>statx</c> says of a file: its owner, type and permission bits, and its identity.</summary>
internal readonly record struct FileStatus(uint UserId, ushort Mode, ulong Inode, ulong Device)
{
    public bool IsDirectory => (Mode & NativeMethods.SIfMt) == NativeMethods.SIfDir;

    public bool IsSymbolicLink => (Mode & NativeMethods.SIfMt) == NativeMethods.SIfLnk;

    /// <summary>Whether users other than the owner may create, rename or remove entries (group or others may write).</summary>
    public bool IsWritableByOthers => (Mode & 0b000_010_010) != 0;

    /// <summary>The sticky bit: in such a directory (like /tmp) only an entry's owner may rename or remove it.</summary>
    public bool IsSticky => (Mode & NativeMethods.SIsVtx) != 0;

    /// <summary>The permission bits in octal, as ls and chmod show them.</summary>
    public string Permissions => System.Convert.ToString(Mode & 0xFFF, 8).PadLeft(4, '0');

    public bool IsSameFile(FileStatus other) => Inode == other.Inode && Device == other.Device;
}
