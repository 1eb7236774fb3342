using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// Running out of descriptors (a real EMFILE under <c>ulimit -n</c>) degrades the server instead of killing it: it
/// keeps its listening sockets and its connections, leaves a reserve of descriptors to the runtime (which needs some for
/// every thread it starts), lets new connections wait in the listen queues, and accepts again on every socket once
/// descriptors are free.
/// </summary>
public class AcceptErrorTests(ITestOutputHelper output)
{
    /// <summary>
    /// The sample's descriptor limit. The runtime alone holds about 190 descriptors once the app serves (it keeps every
    /// loaded assembly open), so this leaves room for some 60-80 connections besides the reserve.
    /// </summary>
    private const int FileDescriptorLimit = 300;

    private const int MaxConnections = 600;

    /// <summary>Connections not answered within 3 s before event 42: beyond a few slow ones, the server stopped accepting without saying so.</summary>
    private const int MaxUnansweredBeforeExhausted = 10;

    private const int DescriptorsExhausted = 42;
    private const int DescriptorsAvailable = 43;

    [Fact]
    public async Task AcceptingResumesOnEverySocketAfterRunningOutOfDescriptors()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        using var app = SampleProcess.Start(
            $"http://127.0.0.1:{port}",
            ["--ReusePort:ListenerCount=2", "--ReusePort:SocketHandoff=false"],
            fileDescriptorLimit: FileDescriptorLimit);
        await app.WaitUntilServingAsync(endPoint);

        // Warm up, so that the request path has loaded (and opened) its assemblies before descriptors run out.
        var warmUp = await RawHttpClient.GetManyAsync(endPoint, 20);
        Assert.All(warmUp, r => Assert.Equal(app.Pid, r.Pid));

        var served = new List<RawHttpClient>();
        var stuck = new List<RawHttpClient>();
        try
        {
            // Keep-alive connections, each answered and kept open, until the server runs out of descriptors and stops
            // accepting. (One that is merely slow is kept as well, and must be answered in the end like the others.)
            while (app.CountEvents(DescriptorsExhausted) == 0)
            {
                Assert.True(served.Count + stuck.Count < MaxConnections && stuck.Count < MaxUnansweredBeforeExhausted,
                    $"The server answered {served.Count} connections and left {stuck.Count} unanswered without running out of descriptors.\n{app.Output}");
                var client = await RawHttpClient.ConnectAsync(endPoint);
                await client.SendGetAsync("/", keepAlive: true);
                try
                {
                    var response = await client.ReadResponseAsync(TimeSpan.FromSeconds(3));
                    Assert.Equal(app.Pid, response.Pid);
                    served.Add(client);
                }
                catch (TimeoutException)
                {
                    stuck.Add(client);
                }
            }

            // More connections, until each listening socket has some waiting in its queue (the kernel picks the socket by
            // hashing the connection): accepting has paused on every socket, and none of them lost its queue.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (ListeningSockets.AcceptQueues(port) is var queues && (queues.Count != 2 || queues.Values.Any(q => q == 0)))
            {
                Assert.True(DateTime.UtcNow < deadline && stuck.Count < MaxConnections,
                    $"Queued {stuck.Count} connections, yet the accept queues are [{string.Join(", ", queues.Values)}].\n{app.Output}");
                var client = await RawHttpClient.ConnectAsync(endPoint);
                stuck.Add(client);
                await client.SendGetAsync("/", keepAlive: false);
            }

            output.WriteLine($"Served {served.Count} keep-alive connections before running out; {stuck.Count} connections queued behind them.");

            // Degraded, not dead: the process still holds both listening sockets and serves the connections it has.
            Assert.NotEmpty(served);
            Assert.False(app.HasExited, app.Output);
            Assert.Equal(2, ListeningSockets.HeldBy(app.Pid, port).Count);
            await served[0].SendGetAsync("/", keepAlive: true);
            Assert.Equal(app.Pid, (await served[0].ReadResponseAsync(TimeSpan.FromSeconds(20))).Pid);
            Assert.Equal(0, app.CountEvents(DescriptorsAvailable));

            // Free the descriptors: accepting resumes, and every queued connection, on both sockets, is answered.
            foreach (var client in served)
            {
                client.Dispose();
            }

            served.Clear();
            await app.WaitForEventAsync(DescriptorsAvailable, SampleProcess.StartTimeout);
            foreach (var client in stuck)
            {
                var response = await client.ReadResponseAsync(TimeSpan.FromSeconds(20));
                Assert.Equal(200, response.StatusCode);
                Assert.Equal(app.Pid, response.Pid);
            }
        }
        catch
        {
            output.WriteLine(app.Output);
            output.WriteLine(ListeningSockets.Describe(port, app.Pid));
            throw;
        }
        finally
        {
            foreach (var client in served.Concat(stuck))
            {
                client.Dispose();
            }
        }

        // And fresh connections, which the kernel spreads over both sockets, are all answered again.
        var responses = await RawHttpClient.GetManyAsync(endPoint, 100, timeout: TimeSpan.FromSeconds(10));
        Assert.All(responses, r => Assert.Equal(app.Pid, r.Pid));
        Assert.False(app.HasExited, app.Output);
        Assert.Equal(2, ListeningSockets.HeldBy(app.Pid, port).Count);
    }
}
