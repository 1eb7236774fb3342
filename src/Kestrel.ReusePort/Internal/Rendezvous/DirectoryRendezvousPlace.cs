using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kestrel.ReusePort.Internal.Handoff.Protocol;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.Internal.Rendezvous;

/// <summary>
/// A socket file in a private directory: <c>&lt;endpoint&gt;.sock</c>, listened on by the instance that holds an
/// exclusive <c>flock</c> on <c>&lt;endpoint&gt;.lock</c>.
/// </summary>
/// <remarks>
/// The lock decides who listens: the kernel releases it when its holder dies, even by SIGKILL, so a socket file left
/// by a killed instance is known to be stale to whoever gets the lock next, and two instances that find it at the same
/// moment cannot both replace it. The new owner binds a temporary name and renames it over the old file, so the place
/// never goes missing while it changes hands. Only this user can write to the directory (see <see cref="PrivateDirectory"/>).
/// </remarks>
internal sealed class DirectoryRendezvousPlace : RendezvousPlace
{
    private const uint LockFileMode = 0b110_000_000;
    private const int MaxLockAttempts = 8;

    private readonly PrivateDirectory _directory;
    private readonly string _socketName;
    private readonly string _lockName;
    private int _lock = -1;
    private FileStatus? _listening;

    public DirectoryRendezvousPlace(PrivateDirectory directory, IPEndPoint endpoint)
    {
        _directory = directory;
        var name = endpoint.ToString();
        _socketName = name + ".sock";
        _lockName = name + ".lock";
        WatchEndPoint = new UnixDomainSocketEndPoint(directory.PathOf(_socketName));
    }

    public override string Description => System.IO.Path.Join(_directory.Path, _socketName);

    public override UnixDomainSocketEndPoint WatchEndPoint { get; }

    public override IReadOnlyList<RendezvousCandidate> FindRunningInstances() =>
        [new(WatchEndPoint, Description, ProcessId: null, HandoffProtocol.CurrentVersion)];

    public override Socket? TryListen()
    {
        if (!TryLock())
        {
            return null;
        }

        // Holding the lock proves no live instance listens here: whatever socket file is left is stale, ours to replace.
        var temporary = _directory.PathOf(string.Create(CultureInfo.InvariantCulture, $"{_socketName}.{Environment.ProcessId}.tmp"));
        NativeMethods.Unlink(temporary);
        Socket? listener = null;
        try
        {
            listener = Listen(new UnixDomainSocketEndPoint(temporary));
            if (NativeMethods.Rename(temporary, _directory.PathOf(_socketName)) != 0)
            {
                throw NativeMethods.LastError($"rename to '{Description}'");
            }

            _listening = NativeMethods.StatNoFollow(_directory.PathOf(_socketName));
            return listener;
        }
        catch
        {
            listener?.Dispose();
            NativeMethods.Unlink(temporary);
            Unlock();
            throw;
        }
    }

    public override bool IsStillListening() =>
        _directory.IsStillAtPath()
        && _listening is { } listening
        && NativeMethods.StatNoFollow(_directory.PathOf(_socketName)) is { } current
        && current.IsSameFile(listening);

    public override void Release(bool successorsWaiting)
    {
        if (_lock < 0)
        {
            return;
        }

        if (!successorsWaiting)
        {
            // Only what this instance created, and only while it still holds the lock: never a successor's file.
            if (_listening is { } listening && NativeMethods.StatNoFollow(_directory.PathOf(_socketName)) is { } socketFile && socketFile.IsSameFile(listening))
            {
                NativeMethods.Unlink(_directory.PathOf(_socketName));
            }

            if (NativeMethods.StatDescriptor(_lock) is { } held && NativeMethods.StatNoFollow(_directory.PathOf(_lockName)) is { } lockFile && lockFile.IsSameFile(held))
            {
                NativeMethods.Unlink(_directory.PathOf(_lockName));
            }
        }

        _listening = null;
        Unlock();
    }

    public override void Dispose()
    {
        Unlock();
        base.Dispose();
    }

    private bool TryLock()
    {
        for (var attempt = 0; attempt < MaxLockAttempts; attempt++)
        {
            var path = _directory.PathOf(_lockName);
            var descriptor = NativeMethods.Open(path, NativeMethods.ORdWr | NativeMethods.OCreat | NativeMethods.ONoFollow | NativeMethods.OCloexec, LockFileMode);
            if (descriptor < 0)
            {
                throw NativeMethods.LastError($"open '{System.IO.Path.Join(_directory.Path, _lockName)}'");
            }

            if (NativeMethods.FLock(descriptor, NativeMethods.LockExclusive | NativeMethods.LockNonBlocking) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                NativeMethods.Close(descriptor);
                if (errno == NativeMethods.EAGAIN)
                {
                    return false;
                }

                throw NativeMethods.Error(errno, $"flock '{System.IO.Path.Join(_directory.Path, _lockName)}'");
            }

            // A previous owner may have removed the lock file after this one opened it: a lock on a removed file
            // excludes no one, so it counts only if the file is still the one at the path.
            if (NativeMethods.StatDescriptor(descriptor) is { } held && NativeMethods.StatNoFollow(path) is { } current && current.IsSameFile(held))
            {
                _lock = descriptor;
                return true;
            }

            NativeMethods.Close(descriptor);
        }

        return false;
    }

    private void Unlock()
    {
        if (_lock >= 0)
        {
            NativeMethods.Close(_lock);
            _lock = -1;
        }
    }
}
