using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Builds the options of the connections this transport creates from Kestrel's <see cref="SocketTransportOptions"/>.
/// </summary>
internal static class ConnectionFactoryOptions
{
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicConstructors, typeof(SocketConnectionFactoryOptions))]
    public static SocketConnectionFactoryOptions From(SocketTransportOptions options)
    {
        // Kestrel's own listeners take their connection options from an internal constructor, which also carries the
        // server's pinned-block memory pool (with its metrics and eviction) and the FIN-on-error switch. The public
        // constructor would fall back to MemoryPool<byte>.Shared, and connections would buffer differently from stock.
        var constructor = typeof(SocketConnectionFactoryOptions).GetConstructor(
            BindingFlags.Instance | BindingFlags.NonPublic, [typeof(SocketTransportOptions)]);
        if (constructor?.Invoke([options]) is SocketConnectionFactoryOptions stock)
        {
            return stock;
        }

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
