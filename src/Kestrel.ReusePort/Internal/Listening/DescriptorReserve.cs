using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Keeps descriptors free for the runtime when connections fill the process's descriptor table, so that the process
/// degrades (connections wait in the listen queue) instead of dying.
/// </summary>
/// <remarks>
/// <para>
/// The .NET runtime needs descriptors of its own at any time: every thread it starts makes a pipe first (the PAL starts
/// each thread suspended and waits for it on a pipe), and when that fails in the thread pool's thread injection, the
/// runtime prints "Out of memory." and aborts. Descriptors are process-wide, so accepting the last free ones leaves the
/// process one thread-pool growth away from that abort.
/// </para>
/// <para>
/// So the accept loops hold a reserve of descriptors while they accept, and check after every accept that at least
/// <see cref="Headroom"/> more are free (two <c>fcntl(F_DUPFD)</c> and two <c>close</c>, no lock). When that check or
/// an accept fails for want of descriptors, the reserve is closed, which leaves the runtime <see cref="Size"/> free
/// ones, and every accept loop of the process pauses: new connections wait in the kernel's listen queue, as they do
/// behind a busy accept. The loops retake the reserve, with headroom to spare, once connections have closed, and accept
/// again.
/// </para>
/// </remarks>
internal sealed class DescriptorReserve
{
    /// <summary>Descriptors the reserve holds, and leaves free for the runtime once the process runs out.</summary>
    public const int Size = 16;

    /// <summary>
    /// Descriptors that must still be free, besides the reserve, after an accept: the two of the pipe a new thread needs.
    /// </summary>
    public const int Headroom = 2;

    private const int FDupFdCloexec = 1030;
    private const int RLimitNoFile = 7;

    // Below this descriptor number an accepted socket leaves room enough without asking the kernel (see HasHeadroom).
    private static readonly long s_checkFrom = Limit is > 0 and var limit ? limit - (4 * (Size + Headroom)) : long.MaxValue;

    private readonly Lock _gate = new();
    private readonly List<int> _held = [];
    private bool _taken;
    private long _releasedAt;

    private DescriptorReserve()
    {
        _releasedAt = Stopwatch.GetTimestamp();
    }

    /// <summary>Descriptors are per process, and so is their reserve: every listener of the process shares it.</summary>
    public static DescriptorReserve Shared { get; } = new();

    /// <summary>Whether the reserve is held, so that accepting may go on; false once the process ran out.</summary>
    public bool IsHeld => Volatile.Read(ref _taken);

    /// <summary>How long ago the reserve was last released.</summary>
    public TimeSpan SinceReleased => Stopwatch.GetElapsedTime(Volatile.Read(ref _releasedAt));

    /// <summary>The process's descriptor limit (RLIMIT_NOFILE's soft limit), for messages.</summary>
    public static long Limit
    {
        get
        {
            Span<ulong> limits = stackalloc ulong[2];
            unsafe
            {
                fixed (ulong* pointer = limits)
                {
                    return NativeMethods.GetResourceLimit(RLimitNoFile, pointer) == 0 ? (long)Math.Min(limits[0], long.MaxValue) : -1;
                }
            }
        }
    }

    /// <summary>
    /// Takes the reserve, with <see cref="Headroom"/> descriptors to spare, unless it is held already. True when it is
    /// held afterwards; <paramref name="taken"/> says whether this call took it.
    /// </summary>
    public bool TryTake(out bool taken)
    {
        taken = false;
        lock (_gate)
        {
            if (_taken)
            {
                return true;
            }

            for (var i = 0; i < Size + Headroom; i++)
            {
                var fd = NativeMethods.Open("/dev/null", NativeMethods.OCloexec, 0);
                if (fd < 0)
                {
                    CloseHeld(_held.Count);
                    return false;
                }

                _held.Add(fd);
            }

            // The spare ones only proved there was room beyond the reserve.
            CloseHeld(Headroom);
            Volatile.Write(ref _taken, true);
            taken = true;
            return true;
        }
    }

    /// <summary>
    /// Closes the reserve, leaving its descriptors to the runtime, and pauses accepting. True when this call released
    /// it, so that one message says so.
    /// </summary>
    public bool Release()
    {
        lock (_gate)
        {
            if (!_taken)
            {
                return false;
            }

            CloseHeld(_held.Count);
            Volatile.Write(ref _releasedAt, Stopwatch.GetTimestamp());
            Volatile.Write(ref _taken, false);
            return true;
        }
    }

    /// <summary>
    /// Whether at least <see cref="Headroom"/> descriptors are still free after <paramref name="accepted"/> took one.
    /// </summary>
    /// <remarks>
    /// The kernel gives a new descriptor the lowest free number, so an accepted socket far below the limit says that
    /// the table is far from full, at no cost: only near the limit does this ask the kernel (two <c>fcntl</c>, two
    /// <c>close</c>, some microseconds), so the accept path of a process with descriptors to spare does no more work.
    /// </remarks>
    public static bool HasHeadroom(Socket accepted)
    {
        var fd = (int)accepted.SafeHandle.DangerousGetHandle();
        if (fd < s_checkFrom)
        {
            return true;
        }

        Span<int> probes = stackalloc int[Headroom];
        var count = 0;
        for (; count < Headroom; count++)
        {
            probes[count] = NativeMethods.DuplicateDescriptor(fd, FDupFdCloexec, 0);
            if (probes[count] < 0)
            {
                break;
            }
        }

        for (var i = 0; i < count; i++)
        {
            // A close of a descriptor of our own cannot fail but with EINTR, and Linux frees it even then.
            _ = NativeMethods.Close(probes[i]);
        }

        return count == Headroom;
    }

    private void CloseHeld(int count)
    {
        for (var i = 0; i < count; i++)
        {
            var last = _held.Count - 1;
            _ = NativeMethods.Close(_held[last]);
            _held.RemoveAt(last);
        }
    }
}
