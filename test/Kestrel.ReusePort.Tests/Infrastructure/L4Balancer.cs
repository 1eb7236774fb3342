using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A layer-4 load balancer in front of "pods" (instances on their own addresses), as kube-proxy or IPVS behaves: each
/// client connection goes to the next backend in turn, bytes are forwarded both ways, and nothing is retried. A
/// backend that refuses or resets the connection has its client reset too. A removed backend keeps being chosen for a
/// propagation delay (the time an endpoint removal takes to reach every node), then no more.
/// </summary>
public sealed class L4Balancer : IAsyncDisposable
{
    private static readonly TimeSpan s_connectTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly Backend[] _backends;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _forwarding = [];
    private long _next;
    private long _refused;

    private L4Balancer(IReadOnlyList<IPEndPoint> backends)
    {
        _backends = [.. backends.Select(b => new Backend(b))];
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1024);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Where clients connect.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Client connections whose backend refused or reset the connection to it before any byte came back.</summary>
    public long RefusedConnections => Interlocked.Read(ref _refused);

    public static L4Balancer Start(params IPEndPoint[] backends) => new(backends);

    /// <summary>Takes <paramref name="backend"/> out of rotation once <paramref name="propagationDelay"/> has passed.</summary>
    public void Remove(IPEndPoint backend, TimeSpan propagationDelay)
    {
        var entry = Find(backend);
        entry.RemovedAt = Stopwatch.GetTimestamp();
        entry.DropAt = entry.RemovedAt + (long)(propagationDelay.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>Whether the propagation delay of a removed backend has passed, so that it gets no more connections.</summary>
    public bool IsDropped(IPEndPoint backend) => Find(backend).DropAt is { } dropAt && Stopwatch.GetTimestamp() >= dropAt;

    /// <summary>Connections sent to <paramref name="backend"/> after <see cref="Remove"/> was called for it.</summary>
    public long ConnectionsAfterRemoval(IPEndPoint backend) => Interlocked.Read(ref Find(backend).AfterRemoval);

    /// <summary>Connections sent to <paramref name="backend"/> that it refused or reset.</summary>
    public long RefusedBy(IPEndPoint backend) => Interlocked.Read(ref Find(backend).Refused);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        Task[] forwarding;
        lock (_forwarding)
        {
            forwarding = [.. _forwarding];
        }

        await Task.WhenAll(forwarding).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _stop.Dispose();
    }

    private Backend Find(IPEndPoint backend) => _backends.Single(b => b.EndPoint.Equals(backend));

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException && _stop.IsCancellationRequested)
            {
                return;
            }

            var task = Task.Run(() => ForwardAsync(client));
            lock (_forwarding)
            {
                _forwarding.RemoveAll(t => t.IsCompleted);
                _forwarding.Add(task);
            }
        }
    }

    private Backend Choose()
    {
        var now = Stopwatch.GetTimestamp();
        var routable = _backends.Where(b => b.DropAt is not { } dropAt || now < dropAt).ToArray();
        var chosen = routable[(int)(Interlocked.Increment(ref _next) % routable.Length)];
        if (chosen.RemovedAt is not null)
        {
            Interlocked.Increment(ref chosen.AfterRemoval);
        }

        return chosen;
    }

    private async Task ForwardAsync(Socket client)
    {
        var backend = Choose();
        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(s_connectTimeout);
                await upstream.ConnectAsync(backend.EndPoint, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                // As with DNAT, the client learns of the backend's refusal as a reset; nothing is retried elsewhere.
                Interlocked.Increment(ref _refused);
                Interlocked.Increment(ref backend.Refused);
                Reset(client);
                return;
            }

            var up = PumpAsync(client, upstream);
            var down = PumpAsync(upstream, client);
            var (upClean, _) = await up.ConfigureAwait(false);
            var (downClean, answered) = await down.ConfigureAwait(false);
            if (!downClean && answered == 0)
            {
                // Reset in the backend's accept queue, e.g. when it closed its listening socket.
                Interlocked.Increment(ref _refused);
                Interlocked.Increment(ref backend.Refused);
            }

            if (!upClean || !downClean)
            {
                Reset(client);
                Reset(upstream);
            }
        }
        finally
        {
            upstream.Dispose();
            client.Dispose();
        }
    }

    /// <summary>Copies until end of stream, then half-closes the other side. Says whether it ended cleanly, and how many bytes came.</summary>
    private async Task<(bool Clean, long Bytes)> PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        long total = 0;
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return (true, total);
                }

                total += read;
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The other pump may still wait on a healthy side: a reset ends both.
            Reset(from);
            Reset(to);
            return (false, total);
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private sealed class Backend(IPEndPoint endPoint)
    {
        public long AfterRemoval;
        public long Refused;

        public IPEndPoint EndPoint { get; } = endPoint;

        public long? RemovedAt { get; set; }

        public long? DropAt { get; set; }
    }
}
