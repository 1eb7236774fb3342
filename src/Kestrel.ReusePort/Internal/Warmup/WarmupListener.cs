using System;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Internal.Warmup;

/// <summary>
/// A listening socket on a loopback port of its own, feeding an endpoint's Kestrel pipeline while the instance warms
/// up: no other instance shares it, and it hands over only connections from the warm-up client's own sockets, so no
/// other local process can reach the app through it either.
/// </summary>
internal sealed class WarmupListener : IDisposable
{
    private readonly Socket _socket;
    private readonly Action<Socket> _dispatch;
    private readonly ConcurrentDictionary<EndPoint, byte> _clients = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;

    private WarmupListener(Socket socket, Action<Socket> dispatch)
    {
        _socket = socket;
        _dispatch = dispatch;
        EndPoint = (IPEndPoint)socket.LocalEndPoint!;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Where the warm-up client connects.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Listens on 127.0.0.1 (or ::1 where IPv4 is missing), on a port of the kernel's choosing.</summary>
    public static WarmupListener Start(Action<Socket> dispatch)
    {
        Socket? socket = null;
        foreach (var loopback in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            socket = new Socket(loopback.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(loopback, 0));
                socket.Listen(16);
                break;
            }
            catch (SocketException) when (loopback.Equals(IPAddress.Loopback))
            {
                socket.Dispose();
                socket = null;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        return new WarmupListener(socket!, dispatch);
    }

    /// <summary>A client socket, bound already so that its address is known to this listener before it connects.</summary>
    public Socket CreateClientSocket()
    {
        var client = new Socket(EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            client.Bind(new IPEndPoint(EndPoint.Address, 0));
            _clients.TryAdd(client.LocalEndPoint!, 0);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _socket.Dispose();
        try
        {
            _accepting.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                continue;
            }
            catch (SocketException)
            {
                // E.g. out of descriptors: the client's request times out and the warm-up reports it.
                await Task.Delay(50, _stopping.Token).ConfigureAwait(false);
                continue;
            }

            if (accepted.RemoteEndPoint is { } peer && _clients.TryRemove(peer, out _))
            {
                _dispatch(accepted);
            }
            else
            {
                accepted.Dispose();
            }
        }
    }
}
