using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Internal.Posix;

/// <summary>
/// A directory that only this process's user can write to, held open by a descriptor so that every later use of it
/// goes through that descriptor (<c>/proc/self/fd/N/name</c>) and never through a path someone could swap underneath.
/// </summary>
/// <remarks>
/// Opening verifies the whole path, from <c>/</c> down: every directory belongs to root or to this user and is not
/// writable by others (a sticky directory such as /tmp is allowed on the way, not as the final one); every symbolic
/// link on the way belongs to root or to this user; the final directory belongs to this user and no one else may
/// write to it. A location that fails is refused with the reason, never replaced by another place.
/// </remarks>
internal sealed class PrivateDirectory : IDisposable
{
    private const int MaxSymbolicLinks = 40;

    private readonly int _descriptor;
    private readonly FileStatus _status;

    // Where the checked path led, links resolved: a path whose last part is a link must be compared there.
    private readonly string _resolved;
    private int _disposed;

    private PrivateDirectory(string path, string resolved, int descriptor, FileStatus status)
    {
        Path = path;
        _resolved = resolved;
        _descriptor = descriptor;
        _status = status;
    }

    /// <summary>The directory's path as it was given.</summary>
    public string Path { get; }

    /// <summary>
    /// Opens <paramref name="path"/>, creating its last component with mode 0700 if <paramref name="create"/> and it is
    /// missing. Returns null and the reason when the location is not private to this user.
    /// </summary>
    public static PrivateDirectory? TryOpen(string path, bool create, out string? problem)
    {
        var userId = NativeMethods.GetEffectiveUserId();
        problem = Verify(path, create, userId, out var resolved, out var verified);
        if (problem is not null)
        {
            return null;
        }

        var descriptor = NativeMethods.Open(resolved, NativeMethods.OPath | NativeMethods.ODirectory | NativeMethods.ONoFollow | NativeMethods.OCloexec, 0);
        if (descriptor < 0)
        {
            problem = $"it cannot be opened ({Errno()})";
            return null;
        }

        // The directory the descriptor holds must be the one that was checked, not one swapped in since.
        if (NativeMethods.StatDescriptor(descriptor) is not { } opened || !opened.IsSameFile(verified))
        {
            NativeMethods.Close(descriptor);
            problem = "it changed while it was being opened";
            return null;
        }

        return new PrivateDirectory(path, resolved, descriptor, verified);
    }

    /// <summary>A path to <paramref name="name"/> in this directory that resolves through the held descriptor.</summary>
    public string PathOf(string name) => string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{_descriptor}/{name}");

    /// <summary>Whether the directory this instance holds is still where <see cref="Path"/> led (not removed or replaced).</summary>
    public bool IsStillAtPath() => NativeMethods.StatNoFollow(_resolved) is { } current && current.IsSameFile(_status);

    public void Dispose()
    {
        if (System.Threading.Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            NativeMethods.Close(_descriptor);
        }
    }

    private static string? Verify(string path, bool create, uint userId, out string resolved, out FileStatus final)
    {
        resolved = "/";
        final = default;
        if (!System.IO.Path.IsPathRooted(path))
        {
            return "it is not an absolute path";
        }

        if (NativeMethods.StatNoFollow("/") is not { } root || (root.UserId != 0 && root.UserId != userId) || root.IsWritableByOthers)
        {
            return "'/' is not owned by root, or is writable by others";
        }

        var pending = new LinkedList<string>(Split(path));
        var current = "/";
        var status = root;
        var links = 0;
        while (pending.First is { } first)
        {
            var name = first.Value;
            pending.RemoveFirst();
            if (name is "." or "")
            {
                continue;
            }

            if (name == "..")
            {
                current = System.IO.Path.GetDirectoryName(current) ?? "/";
                status = NativeMethods.StatNoFollow(current) ?? status;
                continue;
            }

            var isLast = pending.Count == 0;
            var candidate = System.IO.Path.Join(current, name);
            var entry = NativeMethods.StatNoFollow(candidate);
            if (entry is null && Marshal.GetLastPInvokeError() == NativeMethods.ENOENT && isLast && create)
            {
                // Racing another instance of this user to create it is fine: both then check what is there.
                if (NativeMethods.MakeDirectory(candidate, 0b111_000_000) != 0 && Marshal.GetLastPInvokeError() != NativeMethods.EEXIST)
                {
                    return $"'{candidate}' cannot be created ({Errno()})";
                }

                entry = NativeMethods.StatNoFollow(candidate);
            }

            if (entry is not { } found)
            {
                return $"'{candidate}' cannot be read ({Errno()})";
            }

            if (found.IsSymbolicLink)
            {
                // The link's directory passed the checks, so only root or this user can have put it there, unless that
                // directory is sticky and world-writable like /tmp: then the link's own owner tells who planted it.
                if (found.UserId != 0 && found.UserId != userId)
                {
                    return $"it is reached through the symbolic link '{candidate}', which belongs to user id {found.UserId}";
                }

                if (++links > MaxSymbolicLinks)
                {
                    return "it is reached through too many symbolic links";
                }

                var target = new FileInfo(candidate).LinkTarget ?? string.Empty;
                if (System.IO.Path.IsPathRooted(target))
                {
                    current = "/";
                    status = root;
                }

                var parts = Split(target);
                for (var i = parts.Length - 1; i >= 0; i--)
                {
                    pending.AddFirst(parts[i]);
                }

                continue;
            }

            if (!found.IsDirectory)
            {
                return $"'{candidate}' is not a directory";
            }

            if (isLast)
            {
                if (found.UserId != userId)
                {
                    return $"'{candidate}' belongs to user id {found.UserId}, not to this process's user id {userId}";
                }

                if (found.IsWritableByOthers)
                {
                    return $"'{candidate}' is writable by its group or by others (mode {found.Permissions}); it must be writable by user id {userId} alone (e.g. mode 0700)";
                }
            }
            else
            {
                if (found.UserId != 0 && found.UserId != userId)
                {
                    return $"'{candidate}' on its path belongs to user id {found.UserId}, who could replace what lies below it";
                }

                if (found.IsWritableByOthers && !found.IsSticky)
                {
                    return $"'{candidate}' on its path is writable by its group or by others without the sticky bit (mode {found.Permissions}), so anyone could replace what lies below it";
                }
            }

            current = candidate;
            status = found;
        }

        if (current == "/")
        {
            return "'/' cannot be the rendezvous directory";
        }

        resolved = current;
        final = status;
        return null;
    }

    private static string[] Split(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries);

    private static string Errno()
    {
        var errno = Marshal.GetLastPInvokeError();
        return string.Create(CultureInfo.InvariantCulture, $"{Marshal.GetPInvokeErrorMessage(errno)}, errno {errno}");
    }
}
