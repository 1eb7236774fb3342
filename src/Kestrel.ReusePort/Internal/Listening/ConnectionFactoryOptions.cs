using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.ReusePort.Internal.Listening;

/// <summary>
/// Builds the options of the connections this transport creates from Kestrel's <see cref="SocketTransportOptions"/>.
/// </summary>
internal static class ConnectionFactoryOptions
{
    /// <summary>
    /// The connection options Kestrel's own listeners would use; <paramref name="fromKestrel"/> is false when this
    /// Kestrel's internal constructor was not found and the options were copied field by field, without its pool.
    /// </summary>
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicConstructors, typeof(SocketConnectionFactoryOptions))]
    public static SocketConnectionFactoryOptions From(SocketTransportOptions options, out bool fromKestrel)
    {
        // Kestrel's own listeners take their connection options from an internal constructor, which also carries the
        // server's pinned-block memory pool (with its metrics and eviction) and the FIN-on-error switch. The public
        // constructor would fall back to MemoryPool<byte>.Shared, and connections would buffer differently from stock.
        var constructor = typeof(SocketConnectionFactoryOptions).GetConstructor(
            BindingFlags.Instance | BindingFlags.NonPublic, [typeof(SocketTransportOptions)]);
        if (constructor?.Invoke([options]) is SocketConnectionFactoryOptions stock)
        {
            fromKestrel = true;
            return stock;
        }

        fromKestrel = false;
        return new SocketConnectionFactoryOptions
        {
            IOQueueCount = options.IOQueueCount,
            WaitForDataBeforeAllocatingBuffer = options.WaitForDataBeforeAllocatingBuffer,
            MaxReadBufferSize = options.MaxReadBufferSize,
            MaxWriteBufferSize = options.MaxWriteBufferSize,
            UnsafePreferInlineScheduling = options.UnsafePreferInlineScheduling,
        };
    }
}
