using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Benchmarks;

/// <summary>
/// <c>--steering</c>: how CPU steering would spread new connections over a group of SO_REUSEPORT sockets, against the
/// kernel's default hash. The transport does not steer (this report is why); the group here is built from plain sockets
/// so that each policy can be tried on the same kernel with the same client. Not a timing.
/// </summary>
public static class SteeringReport
{
    private const int SolSocket = 1;
    private const int SoIncomingCpu = 49;
    private const int SoAttachReuseportCbpf = 51;

    private enum Steering
    {
        Hash,
        IncomingCpu,
        CbpfByCpu,
    }

    public static async Task<int> RunAsync(int connections)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Spread of {connections} loopback connections over a group of SO_REUSEPORT sockets by steering policy (ProcessorCount {Environment.ProcessorCount})"));
        Console.WriteLine();
        Console.WriteLine("- hash: the kernel's default, a hash of the connection's addresses and ports;");
        Console.WriteLine("- incoming-cpu: socket i has SO_INCOMING_CPU = i mod cores, so the kernel prefers the socket of the CPU that handles the SYN;");
        Console.WriteLine("- cbpf-by-cpu: a classic BPF program on the group returns the CPU that handles the SYN as the socket's index (SO_ATTACH_REUSEPORT_CBPF).");
        Console.WriteLine();
        Console.WriteLine("| steering | sockets | connections per socket | min/max | coefficient of variation |");
        Console.WriteLine("| --- | ---: | --- | ---: | ---: |");
        foreach (var steering in Enum.GetValues<Steering>())
        {
            foreach (var count in new[] { 2, Environment.ProcessorCount, 4 }.Distinct().Order())
            {
                var perSocket = await MeasureAsync(steering, count, connections).ConfigureAwait(false);
                var mean = perSocket.Average();
                var deviation = Math.Sqrt(perSocket.Select(c => (c - mean) * (c - mean)).Average());
                var name = steering switch { Steering.IncomingCpu => "incoming-cpu", Steering.CbpfByCpu => "cbpf-by-cpu", _ => "hash" };
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {count} | {string.Join(" / ", perSocket)} | {(double)perSocket.Min() / Math.Max(1, perSocket.Max()):F2} | {deviation / mean:P1} |"));
            }
        }

        return 0;
    }

    private static async Task<long[]> MeasureAsync(Steering steering, int count, int connections)
    {
        var sockets = new List<Socket>(count);
        var accepted = new long[count];
        using var stopping = new CancellationTokenSource();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(socket);

                // On Linux this sets SO_REUSEPORT as well as SO_REUSEADDR.
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                var port = i == 0 ? 0 : ((IPEndPoint)sockets[0].LocalEndPoint!).Port;
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                socket.Listen(512);
                if (steering == Steering.IncomingCpu)
                {
                    socket.SetRawSocketOption(SolSocket, SoIncomingCpu, BitConverter.GetBytes(i % Environment.ProcessorCount));
                }
            }

            if (steering == Steering.CbpfByCpu)
            {
                AttachCpuProgram(sockets[0], count);
            }

            var loops = sockets.Select((socket, index) => Task.Run(async () =>
            {
                while (true)
                {
                    Socket connection;
                    try
                    {
                        connection = await socket.AcceptAsync(stopping.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    Interlocked.Increment(ref accepted[index]);
                    connection.Dispose();
                }
            })).ToArray();

            var endpoint = (IPEndPoint)sockets[0].LocalEndPoint!;
            await LoopbackClients.ConnectAndCloseAsync(endpoint, connections).ConfigureAwait(false);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (accepted.Sum() < connections && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10).ConfigureAwait(false);
            }

            await stopping.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(loops).ConfigureAwait(false);
            return accepted;
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    // The program is { A = the CPU handling the packet; A = A mod count; return A }; the kernel takes the returned value as
    // an index into the group's sockets, in the order they joined.
    private static unsafe void AttachCpuProgram(Socket socket, int count)
    {
        const ushort LoadAbsoluteWord = 0x20;    // BPF_LD | BPF_W | BPF_ABS
        const ushort ModuloConstant = 0x94;      // BPF_ALU | BPF_MOD | BPF_K
        const ushort ReturnAccumulator = 0x16;   // BPF_RET | BPF_A
        const uint AncillaryCpu = 0xfffff000 + 36; // SKF_AD_OFF + SKF_AD_CPU

        // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } and struct sock_fprog { u16 len; struct sock_filter *filter; }.
        var program = stackalloc ulong[3];
        program[0] = LoadAbsoluteWord | ((ulong)AncillaryCpu << 32);
        program[1] = ModuloConstant | ((ulong)(uint)count << 32);
        program[2] = ReturnAccumulator;
        var header = stackalloc byte[16];
        *(ushort*)header = 3;
        *(ulong**)(header + 8) = program;
        socket.SetRawSocketOption(SolSocket, SoAttachReuseportCbpf, new ReadOnlySpan<byte>(header, 16));
    }
}
