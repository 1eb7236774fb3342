using System;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Internal.Readiness;

/// <summary>
/// Tells systemd (<c>Type=notify</c>) where the instance stands: READY=1 once it is warm and accepts, STOPPING=1 when
/// it begins to stop, STATUS= lines meanwhile. Each state is sent once.
/// </summary>
/// <remarks>
/// <para>
/// Where the host has an <see cref="ISystemdNotifier"/> (<c>UseSystemd()</c> under systemd), messages go through it;
/// otherwise they go to <c>$NOTIFY_SOCKET</c> as <c>UseReusePortSockets()</c> found it (see
/// <see cref="NotifySocketAddress"/>).
/// </para>
/// <para>
/// When the host's lifetime is <see cref="SystemdLifetime"/>, it sends READY=1 on ApplicationStarted (which comes
/// after the warm-up and the activation, in <see cref="ReusePortHostLifecycle.StartedAsync"/>) and STOPPING=1 on
/// ApplicationStopping; then only STATUS= lines are sent from here, so that systemd never hears READY=1 twice.
/// </para>
/// </remarks>
internal sealed class SystemdNotifier
{
    private readonly ISystemdNotifier? _hostNotifier;
    private readonly UnixDomainSocketEndPoint? _endpoint;
    private readonly string _target;
    private readonly bool _hostNotifies;
    private readonly ILogger _logger;
    private int _ready;
    private int _stopping;
    private int _failureLogged;

    public SystemdNotifier(IServiceProvider services, ILogger logger)
    {
        _logger = logger;
        _hostNotifies = services.GetService<IHostLifetime>() is SystemdLifetime;
        var address = services.GetService<NotifySocketAddress>() ?? NotifySocketAddress.FromEnvironment();
        _target = address.Path ?? string.Empty;
        if (services.GetService<ISystemdNotifier>() is { IsEnabled: true } hostNotifier)
        {
            _hostNotifier = hostNotifier;
        }
        else if (address.Path is { } path && OperatingSystem.IsLinux())
        {
            // An abstract socket is written with a leading '@'.
            _endpoint = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
        }
    }

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
        try
        {
            if (_hostNotifier is not null)
            {
                _hostNotifier.Notify(new ServiceState(message));
            }
            else if (_endpoint is not null)
            {
                using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                socket.SendTo(Encoding.UTF8.GetBytes(message), _endpoint);
            }
        }
        catch (SocketException e)
        {
            // A service manager that went away must not fail the app; said once.
            if (Interlocked.Exchange(ref _failureLogged, 1) == 0)
            {
                ReusePortLog.NotifyFailed(_logger, _target, e);
            }
        }
    }
}
