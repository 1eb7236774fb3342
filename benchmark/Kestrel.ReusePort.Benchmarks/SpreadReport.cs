using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.ReusePort.Benchmarks;

/// <summary>
/// <c>--spread</c>: how the kernel spreads new connections over the SO_REUSEPORT sockets of one endpoint, read from the
/// transport's own <c>kestrel.reuseport.accepted_connections</c> counter (tagged by socket index). Not a timing.
/// </summary>
public static class SpreadReport
{
    private const string MeterName = "Kestrel.ReusePort";
    private const string AcceptedInstrument = "kestrel.reuseport.accepted_connections";

    public static async Task<int> RunAsync(int connections)
    {
        var counts = new ConcurrentDictionary<int, long>();
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == MeterName && instrument.Name == AcceptedInstrument)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meterListener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "kestrel.reuseport.socket.index" && tag.Value is int socket)
                {
                    counts.AddOrUpdate(socket, value, (_, old) => old + value);
                }
            }
        });
        meterListener.Start();

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Spread of {connections} loopback connections over the SO_REUSEPORT sockets of 127.0.0.1:<free port> (ProcessorCount {Environment.ProcessorCount})"));
        Console.WriteLine();
        Console.WriteLine("| ListenerCount | connections per socket | min/max | coefficient of variation |");
        Console.WriteLine("| ---: | --- | ---: | ---: |");
        foreach (var count in new[] { 1, 2, Environment.ProcessorCount, 4, 8 }.Distinct().Order())
        {
            counts.Clear();
            var factory = Transports.Create("ReusePort-" + count.ToString(CultureInfo.InvariantCulture));
            var listener = await Transports.BindLoopbackAsync(factory).ConfigureAwait(false);
            var accepted = 0;
            var acceptLoop = Task.Run(async () =>
            {
                while (await listener.AcceptAsync().ConfigureAwait(false) is { } connection)
                {
                    Interlocked.Increment(ref accepted);
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            });

            await LoopbackClients.ConnectAndCloseAsync(listener.EndPoint, connections).ConfigureAwait(false);
            while (Volatile.Read(ref accepted) < connections)
            {
                await Task.Delay(10).ConfigureAwait(false);
            }

            await listener.UnbindAsync().ConfigureAwait(false);
            await acceptLoop.ConfigureAwait(false);
            await listener.DisposeAsync().ConfigureAwait(false);

            var perSocket = Enumerable.Range(0, count).Select(i => counts.GetValueOrDefault(i)).ToArray();
            var mean = perSocket.Average();
            var deviation = Math.Sqrt(perSocket.Select(c => (c - mean) * (c - mean)).Average());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {count} | {string.Join(" / ", perSocket)} | {(double)perSocket.Min() / Math.Max(1, perSocket.Max()):F2} | {deviation / mean:P1} |"));
        }

        return 0;
    }
}
