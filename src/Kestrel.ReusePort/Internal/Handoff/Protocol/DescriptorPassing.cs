using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.Internal.Handoff.Protocol;

/// <summary>
/// Passes open file descriptors between processes over a Unix domain socket (SCM_RIGHTS), the way HAProxy, Envoy and
/// systemd hand listening sockets over.
/// </summary>
internal static unsafe class DescriptorPassing
{
    /// <summary>The most descriptors one message may carry; the kernel's own limit is 253 (SCM_MAX_FD).</summary>
    public const int MaxDescriptors = 253;

    public static void Send(Socket socket, ReadOnlySpan<byte> payload, ReadOnlySpan<int> descriptors, TimeSpan timeout)
    {
        Debug.Assert(descriptors.Length is > 0 and <= MaxDescriptors);

        var dataLength = descriptors.Length * sizeof(int);
        var controlLength = NativeMethods.ControlMessageSpace(dataLength);
        var control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();

        var header = (NativeMethods.ControlMessageHeader*)control;
        header->Length = (nuint)NativeMethods.ControlMessageLength(dataLength);
        header->Level = NativeMethods.SolSocket;
        header->Type = NativeMethods.ScmRights;
        descriptors.CopyTo(new Span<int>(control + sizeof(NativeMethods.ControlMessageHeader), descriptors.Length));

        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        fixed (byte* data = payload)
        {
            var vector = new NativeMethods.IOVector { Base = data, Length = (nuint)payload.Length };
            var message = new NativeMethods.MessageHeader
            {
                Vectors = &vector,
                VectorCount = 1,
                Control = control,
                ControlLength = (nuint)controlLength,
            };

            var sent = Call(socket, &message, NativeMethods.MsgNoSignal, SelectMode.SelectWrite, deadline, send: true);

            // The message is a few bytes on an empty stream socket: a short write means the peer is not reading.
            if (sent < payload.Length)
            {
                throw new IOException("The handoff message was only partly sent.");
            }
        }
    }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>'s length, and the descriptors that came with it (close-on-exec) into
    /// <paramref name="descriptors"/>. Returns the number of bytes read; zero means the peer closed the connection.
    /// </summary>
    public static int Receive(Socket socket, Span<byte> buffer, List<int> descriptors, TimeSpan timeout)
    {
        var controlLength = NativeMethods.ControlMessageSpace(MaxDescriptors * sizeof(int));
        var control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();

        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        fixed (byte* data = buffer)
        {
            var vector = new NativeMethods.IOVector { Base = data, Length = (nuint)buffer.Length };
            var message = new NativeMethods.MessageHeader
            {
                Vectors = &vector,
                VectorCount = 1,
                Control = control,
                ControlLength = (nuint)controlLength,
            };

            var received = Call(socket, &message, NativeMethods.MsgCmsgCloexec, SelectMode.SelectRead, deadline, send: false);

            // Every descriptor the kernel installed in this process is ours to close, even if the message is refused.
            var offset = 0;
            var length = (int)message.ControlLength;
            while (offset + sizeof(NativeMethods.ControlMessageHeader) <= length)
            {
                var header = (NativeMethods.ControlMessageHeader*)(control + offset);
                var messageLength = (int)header->Length;
                if (messageLength < sizeof(NativeMethods.ControlMessageHeader) || offset + messageLength > length)
                {
                    break;
                }

                if (header->Level == NativeMethods.SolSocket && header->Type == NativeMethods.ScmRights)
                {
                    var count = (messageLength - sizeof(NativeMethods.ControlMessageHeader)) / sizeof(int);
                    var fds = (int*)(control + offset + sizeof(NativeMethods.ControlMessageHeader));
                    for (var i = 0; i < count; i++)
                    {
                        descriptors.Add(fds[i]);
                    }
                }

                offset += (messageLength + 7) & ~7;
            }

            if ((message.Flags & NativeMethods.MsgCTrunc) != 0)
            {
                throw new IOException("The descriptors sent by the peer did not fit the control buffer (MSG_CTRUNC).");
            }

            return (int)received;
        }
    }

    private static nint Call(Socket socket, NativeMethods.MessageHeader* message, int flags, SelectMode waitFor, long deadline, bool send)
    {
        // A blocking socket would ignore the deadline; waiting is done with Poll instead.
        if (socket.Blocking)
        {
            socket.Blocking = false;
        }

        var added = false;
        socket.SafeHandle.DangerousAddRef(ref added);
        try
        {
            var fd = (int)socket.SafeHandle.DangerousGetHandle();
            while (true)
            {
                var result = send ? NativeMethods.SendMessage(fd, message, flags) : NativeMethods.ReceiveMessage(fd, message, flags);
                if (result >= 0)
                {
                    return result;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == NativeMethods.EINTR)
                {
                    continue;
                }

                if (errno is NativeMethods.ECONNRESET or NativeMethods.EPIPE)
                {
                    // The peer went away: reported as the socket error it is, so that callers can tell it from a fault.
                    throw new SocketException((int)SocketError.ConnectionReset);
                }

                if (errno != NativeMethods.EAGAIN)
                {
                    throw new IOException($"{(send ? "sendmsg" : "recvmsg")} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
                }

                // .NET makes a socket non-blocking once it is used asynchronously: wait for it, within the deadline.
                var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                if (remaining <= TimeSpan.Zero || !socket.Poll(remaining, waitFor))
                {
                    throw new TimeoutException($"The peer did not {(send ? "take" : "send")} the handoff message in time.");
                }
            }
        }
        finally
        {
            if (added)
            {
                socket.SafeHandle.DangerousRelease();
            }
        }
    }
}
