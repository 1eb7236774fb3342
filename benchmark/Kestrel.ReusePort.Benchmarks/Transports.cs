using System;
using System.Collections.Generic;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Benchmarks;

/// <summary>The listener factories the benchmarks compare, by the name shown in the results.</summary>
public static class Transports
{
    public const string Stock = "Stock";
    private const string ReusePortPrefix = "ReusePort-";

    /// <summary>Stock Kestrel, then ListenerCount 1, 2 and <see cref="Environment.ProcessorCount"/> (each once).</summary>
    public static IEnumerable<string> All()
    {
        yield return Stock;
        var seen = new HashSet<int>();
        foreach (var count in new[] { 1, 2, Environment.ProcessorCount })
        {
            if (seen.Add(count))
            {
                yield return ReusePortPrefix + count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>The ListenerCount of a transport name, or 0 for stock Kestrel.</summary>
    public static int ListenerCount(string transport) =>
        transport.StartsWith(ReusePortPrefix, StringComparison.Ordinal)
            ? int.Parse(transport.AsSpan(ReusePortPrefix.Length), System.Globalization.CultureInfo.InvariantCulture)
            : 0;

    /// <summary>
    /// Creates the factory named <paramref name="transport"/>. ReusePort runs with SocketHandoff off (no rendezvous,
    /// no second instance) and DrainTimeout zero (no connection tracking), i.e. the bare accept path.
    /// </summary>
    public static IConnectionListenerFactory Create(string transport)
    {
        var socketOptions = Options.Create(new SocketTransportOptions());
        var listeners = ListenerCount(transport);
        if (listeners == 0)
        {
            return new SocketTransportFactory(socketOptions, NullLoggerFactory.Instance);
        }

        var options = Options.Create(new ReusePortSocketTransportOptions
        {
            ListenerCount = listeners,
            SocketHandoff = false,
            DrainTimeout = TimeSpan.Zero,
        });
        return new ReusePortSocketTransportFactory(options, socketOptions, NullLoggerFactory.Instance);
    }

    /// <summary>Binds 127.0.0.1 on a free port.</summary>
    public static ValueTask<IConnectionListener> BindLoopbackAsync(IConnectionListenerFactory factory, CancellationToken cancellationToken = default) =>
        factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), cancellationToken);
}
