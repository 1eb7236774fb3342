using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A datagram socket that plays systemd's notification socket (<c>$NOTIFY_SOCKET</c>): it keeps every message a
/// child sends, in order, and can run a check the moment each one arrives.
/// </summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly ConcurrentQueue<string> _messages = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _receiving;
    private readonly string? _file;

    /// <param name="abstractName">Bind an abstract name (given to the child as <c>@name</c>) instead of a file.</param>
    public NotifySocket(bool abstractName = false)
    {
        var name = $"kestrel-reuseport-notify-{Guid.NewGuid():N}";
        if (abstractName)
        {
            _socket.Bind(new UnixDomainSocketEndPoint("\0" + name));
            Path = "@" + name;
        }
        else
        {
            _file = System.IO.Path.Join(System.IO.Path.GetTempPath(), name + ".sock");
            _socket.Bind(new UnixDomainSocketEndPoint(_file));
            Path = _file;
        }

        _receiving = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>The value for the child's <c>NOTIFY_SOCKET</c>.</summary>
    public string Path { get; }

    /// <summary>Runs on the receiving thread as each message arrives, before the next one is read.</summary>
    public Action<string>? OnMessage { get; set; }

    public IReadOnlyList<string> Messages => [.. _messages];

    public async Task<string> WaitForAsync(Func<string, bool> predicate, TimeSpan timeout, string description)
    {
        string? found = null;
        await Eventually.UntilAsync(() => (found = _messages.FirstOrDefault(predicate)) is not null, timeout,
            $"{description} at NOTIFY_SOCKET (so far: {string.Join(" | ", Messages)})");
        return found!;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try
        {
            _receiving.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        if (_file is not null)
        {
            File.Delete(_file);
        }

        _stop.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            int received;
            try
            {
                received = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var message = Encoding.UTF8.GetString(buffer, 0, received);
            OnMessage?.Invoke(message);
            _messages.Enqueue(message);
        }
    }
}
