using System;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal;

/// <summary>
/// Tells systemd (<c>Type=notify</c>) where the instance stands, with datagrams to <c>$NOTIFY_SOCKET</c>: READY=1 once
/// it is warm and accepts, STOPPING=1 when it begins to stop, STATUS= lines meanwhile. Each state is sent once.
/// </summary>
/// <remarks>
/// With <c>UseSystemd()</c> (Microsoft.Extensions.Hosting.Systemd) the host's own lifetime sends READY=1 on
/// ApplicationStarted (which comes after the warm-up) and STOPPING=1 on ApplicationStopping; then only STATUS= lines
/// are sent from here, so that systemd never hears READY=1 twice.
/// </remarks>
internal sealed class SystemdNotifier
{
    private const string SystemdLifetimeType = "Microsoft.Extensions.Hosting.Systemd.SystemdLifetime";

    private readonly UnixDomainSocketEndPoint? _endpoint;
    private readonly bool _hostNotifies;
    private readonly ILogger _logger;
    private int _ready;
    private int _stopping;
    private int _failureLogged;

    public SystemdNotifier(IHostLifetime? hostLifetime, ILogger logger)
    {
        _logger = logger;
        _hostNotifies = hostLifetime?.GetType().FullName == SystemdLifetimeType;
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (!string.IsNullOrEmpty(path) && OperatingSystem.IsLinux())
        {
            // An abstract socket is written with a leading '@'.
            _endpoint = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
        }
    }

    public bool IsEnabled => _endpoint is not null;

    public void Ready(string status)
    {
        if (Interlocked.Exchange(ref _ready, 1) == 0)
        {
            Send(_hostNotifies ? $"STATUS={status}" : $"READY=1\nSTATUS={status}");
        }
    }

    public void Stopping(string status)
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 0)
        {
            Send(_hostNotifies ? $"STATUS={status}" : $"STOPPING=1\nSTATUS={status}");
        }
    }

    public void Status(string status) => Send($"STATUS={status}");

    private void Send(string message)
    {
        if (_endpoint is null)
        {
            return;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.UTF8.GetBytes(message), _endpoint);
        }
        catch (SocketException e)
        {
            // A service manager that went away must not fail the app; said once.
            if (Interlocked.Exchange(ref _failureLogged, 1) == 0)
            {
                ReusePortLog.NotifyFailed(_logger, Environment.GetEnvironmentVariable("NOTIFY_SOCKET") ?? string.Empty, e);
            }
        }
    }
}
