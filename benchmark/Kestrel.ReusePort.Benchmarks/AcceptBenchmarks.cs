using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.ReusePort.Benchmarks;

/// <summary>
/// The accept path: connections accepted and closed per second through one <see cref="IConnectionListener"/>.
/// </summary>
/// <remarks>
/// One operation opens <see cref="ConnectionsPerOperation"/> loopback connections at once; the server side runs the
/// loop Kestrel runs (one <see cref="IConnectionListener.AcceptAsync"/> loop that hands every connection to the
/// thread pool), and each connection is disposed right away. The operation ends when all of them were accepted and
/// disposed, and results are per connection (OperationsPerInvoke). Client and server share the process and its
/// cores, so the figures compare transports with each other, not with a real deployment; allocations are
/// process-wide and include the client's sockets, which are the same for every transport.
/// </remarks>
[MemoryDiagnoser]
public class AcceptBenchmarks
{
    public const int ConnectionsPerOperation = 64;

    private readonly Socket[] _clients = new Socket[ConnectionsPerOperation];
    private readonly ValueTask[] _connects = new ValueTask[ConnectionsPerOperation];
    private IConnectionListenerFactory? _factory;
    private IConnectionListener? _listener;
    private EndPoint? _endPoint;
    private Task? _acceptLoop;
    private int _remaining;
    private TaskCompletionSource _done = new();

    [ParamsSource(nameof(TransportNames))]
    public string Transport { get; set; } = Transports.Stock;

    public static IEnumerable<string> TransportNames() => Transports.All();

    [GlobalSetup]
    public void Setup()
    {
        _factory = Transports.Create(Transport);
        _listener = Transports.BindLoopbackAsync(_factory).AsTask().GetAwaiter().GetResult();
        _endPoint = _listener.EndPoint;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_listener is not null)
        {
            _listener.UnbindAsync().AsTask().GetAwaiter().GetResult();
            _acceptLoop?.GetAwaiter().GetResult();
            _listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        (_factory as IDisposable)?.Dispose();
    }

    [Benchmark(Description = "accept+close", OperationsPerInvoke = ConnectionsPerOperation)]
    public async Task AcceptAndClose()
    {
        _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _remaining, ConnectionsPerOperation);

        for (var i = 0; i < _clients.Length; i++)
        {
            _clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            // Every stored ValueTask is awaited exactly once, below; a Task per connect would allocate.
#pragma warning disable CA2012
            _connects[i] = _clients[i].ConnectAsync(_endPoint!, CancellationToken.None);
#pragma warning restore CA2012
        }

        // A client closes as soon as it is connected, as an HTTP client with Connection: close does after its response.
        for (var i = 0; i < _clients.Length; i++)
        {
            await _connects[i].ConfigureAwait(false);
            _clients[i].Dispose();
        }

        await _done.Task.ConfigureAwait(false);
    }

    private async Task AcceptLoopAsync()
    {
        while (await _listener!.AcceptAsync().ConfigureAwait(false) is { } connection)
        {
            // Kestrel's ConnectionDispatcher also queues every accepted connection to the thread pool.
            ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Benchmark.CloseAsync(state.Connection), (Benchmark: this, Connection: connection), preferLocal: false);
        }
    }

    private async Task CloseAsync(ConnectionContext connection)
    {
        await connection.DisposeAsync().ConfigureAwait(false);
        if (Interlocked.Decrement(ref _remaining) == 0)
        {
            _done.TrySetResult();
        }
    }
}
