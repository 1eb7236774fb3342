using System.Net;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Rolling restarts of the sample on one port, as an operator does them, under real load: start the new instance on
/// the same --urls, wait until it has started (warm and accepting), SIGTERM the old one, wait for it to exit.
/// </summary>
public static class RollingRestart
{
    private static readonly TimeSpan s_exitTimeout = TimeSpan.FromSeconds(40);

    /// <summary>
    /// Runs <paramref name="restarts"/> restarts; every new instance must take the sockets over from the one before.
    /// Returns the load's result and the last instance, still running (the caller disposes it with the others).
    /// </summary>
    public static async Task<(LoadResult Load, SampleProcess Survivor)> RunAsync(
        int port, IReadOnlyList<string> arguments, int restarts, LoadMode mode, List<SampleProcess> instances, int listenerCount = 2)
    {
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var urls = $"http://127.0.0.1:{port}";
        var endpoint = $"127.0.0.1:{port}";
        var old = await SampleProcess.StartRunningAsync(port, arguments, "instance 0");
        instances.Add(old);

        await using var load = LoadGenerator.Start(endPoint, mode);
        await load.WaitForMoreRequestsAsync(200, TimeSpan.FromSeconds(30));

        for (var restart = 1; restart <= restarts; restart++)
        {
            var next = SampleProcess.Start(urls, arguments, name: $"instance {restart}");
            instances.Add(next);
            await next.WaitUntilStartedAsync();
            Assert.True(
                next.HasEvent(6, e => (e.Number("SocketCount"), e["EndPoint"], e.Number("ProcessId")) == (listenerCount, endpoint, old.Pid)),
                $"Restart {restart}: the new instance did not take the sockets over from {old}.\n{next.Output}");
            await load.WaitForMoreRequestsAsync(100, TimeSpan.FromSeconds(30));

            old.SignalTerm();
            Assert.Equal(0, await old.WaitForExitAsync(s_exitTimeout));
            old = next;

            // The survivor takes the rendezvous over for the next deploy.
            await Rendezvous.WaitUntilOfferedAsync(old, endpoint);
            await load.WaitForMoreRequestsAsync(100, TimeSpan.FromSeconds(30));
        }

        return (await load.StopAsync(), old);
    }
}
