using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// A failing accept (here a real EMFILE: the process is out of descriptors) is logged and retried; the accept loops
/// never die, and accepting resumes on every socket once descriptors are free again.
/// </summary>
public class AcceptErrorTests(ITestOutputHelper output)
{
    /// <summary>
    /// The sample's descriptor limit. The runtime alone holds about 190 descriptors once the app serves (it keeps every
    /// loaded assembly open), so this leaves room for some 80-100 connections.
    /// </summary>
    private const int FileDescriptorLimit = 300;

    private const int MaxConnections = 600;

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

        bool AcceptFailedOn(int socket, string line) =>
            line.Contains("Kestrel.ReusePort[2]", StringComparison.Ordinal) &&
            line.Contains($"Accepting on socket {socket} of {endPoint} failed with TooManyOpenSockets", StringComparison.Ordinal);
        bool AcceptFailedOnBoth() => app.HasOutput(l => AcceptFailedOn(0, l)) && app.HasOutput(l => AcceptFailedOn(1, l));

        var served = new List<RawHttpClient>();
        var stuck = new List<RawHttpClient>();
        try
        {
            // Keep-alive connections, each answered and kept open, until one is not answered because the server is out
            // of descriptors: its accept fails with EMFILE and leaves the connection in the kernel's queue. (One that is
            // merely slow is kept as well, and must be answered in the end like the others.)
            while (!app.HasOutput(l => AcceptFailedOn(0, l) || AcceptFailedOn(1, l)))
            {
                Assert.True(served.Count + stuck.Count < MaxConnections,
                    $"The server answered {served.Count} connections without running out of descriptors.\n{app.Output}");
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

            // More queued connections until both sockets have one and fail to accept it (a socket only tries to accept
            // when a connection waits on it; the kernel picks the socket by hashing the connection).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!AcceptFailedOnBoth())
            {
                Assert.True(DateTime.UtcNow < deadline && stuck.Count < MaxConnections,
                    $"Only one socket reported EMFILE after {stuck.Count} queued connections.\n{app.Output}");
                var client = await RawHttpClient.ConnectAsync(endPoint);
                stuck.Add(client);
                await client.SendGetAsync("/", keepAlive: false);
                await Task.Delay(50);
            }

            output.WriteLine($"Served {served.Count} keep-alive connections before EMFILE; {stuck.Count} connections queued behind it.");
            Assert.NotEmpty(stuck);
            Assert.False(app.HasExited, app.Output);

            // Free the descriptors: every queued connection, on both sockets, is then accepted and answered.
            foreach (var client in served)
            {
                client.Dispose();
            }

            served.Clear();
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
    }
}
