using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Kestrel.ReusePort.Internal.Drain;
using Kestrel.ReusePort.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// A request still running when its instance drains is not cut: a slow response, a large upload, a large download and
/// a streaming response each finish, complete and intact, over HTTP/1.1, HTTP/2 over TLS and cleartext HTTP/2 (h2c).
/// Where the response had not started when the drain began, the drain also ends by itself with the request: the
/// response carries <c>Connection: close</c>, or the HTTP/2 connection gets GOAWAY once its stream ended.
/// </summary>
public class RequestsInFlightTests(ITestOutputHelper output)
{
    public enum Transfer
    {
        /// <summary>The response is made after the drain began.</summary>
        SlowResponse,

        /// <summary>16 MiB sent to the server, most of it after the drain began.</summary>
        Upload,

        /// <summary>16 MiB from the server, most of it read after the drain began (the server is held by flow control).</summary>
        Download,

        /// <summary>A response started before the drain, its last parts written after it began.</summary>
        Streaming,
    }

    public enum Protocol
    {
        Http11,
        Http2Tls,
        H2c,
    }

    private const int Size = 16 << 20;
    private const int ChunkSize = 64 << 10;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(20);

    public static TheoryData<Protocol, Transfer> Cases()
    {
        var cases = new TheoryData<Protocol, Transfer>();
        foreach (var protocol in Enum.GetValues<Protocol>())
        {
            foreach (var transfer in Enum.GetValues<Transfer>())
            {
                cases.Add(protocol, transfer);
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ARequestRunningWhenTheDrainBeginsFinishesIntact(Protocol protocol, Transfer transfer)
    {
        using var certificate = TestCertificate.Create();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await InProcessServer.StartAsync(new InProcessServerOptions
        {
            ConfigureReusePort = o =>
            {
                o.SocketHandoff = false;
                o.DrainTimeout = TimeSpan.FromSeconds(25);
            },
            ConfigureKestrel = k => k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = protocol == Protocol.Http11 ? HttpProtocols.Http1 : HttpProtocols.Http2;
                if (protocol == Protocol.Http2Tls)
                {
                    l.UseHttps(certificate);
                }
            }),
            ShutdownTimeout = TimeSpan.FromSeconds(28),
            ConfigureApp = app => MapTransfers(app, entered, release),
        });

        var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == certificate.Thumbprint },
        };
        var client = new HttpClient(handler)
        {
            DefaultRequestVersion = protocol == Protocol.Http11 ? HttpVersion.Version11 : HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = s_timeout,
        };
        var scheme = protocol == Protocol.Http2Tls ? "https" : "http";
        var uploadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var request = transfer switch
        {
            Transfer.Upload => new HttpRequestMessage(HttpMethod.Post, $"{scheme}://127.0.0.1:{server.Port}/upload") { Content = new GatedContent(uploadGate.Task) },
            _ => new HttpRequestMessage(HttpMethod.Get, $"{scheme}://127.0.0.1:{server.Port}/{transfer.ToString().ToLowerInvariant()}"),
        };

        // A request message carries its own version; the client's defaults apply only to its shortcut methods.
        request.Version = client.DefaultRequestVersion;
        request.VersionPolicy = client.DefaultVersionPolicy;

        var responding = client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        // A download's or a stream's headers may arrive before its handler says it has written the first part; the
        // others must not be answered before the handler runs (that would mean another endpoint answered).
        await (transfer is Transfer.Download or Transfer.Streaming ? entered.Task : Task.WhenAny(entered.Task, responding)).WaitAsync(s_timeout);
        if (!entered.Task.IsCompleted)
        {
            using var early = await responding;
            Assert.Fail($"answered before the request reached the handler: {(int)early.StatusCode} HTTP/{early.Version} {await early.Content.ReadAsStringAsync().WaitAsync(s_timeout)}");
        }

        HttpResponseMessage? response = null;
        Stream? body = null;
        if (transfer is Transfer.Download or Transfer.Streaming)
        {
            // Its headers and first bytes are out before the drain begins.
            response = await responding.WaitAsync(s_timeout);
            body = await response.Content.ReadAsStreamAsync();
            Assert.Equal(ChunkSize, await ReadAsync(body, ChunkSize, new byte[ChunkSize]));
        }

        var drain = server.App.Services.GetRequiredService<TransportDrain>();
        var drainStarted = Stopwatch.GetTimestamp();
        var stopping = server.StopAsync();
        await Eventually.UntilAsync(() => drain.IsDraining, s_timeout, "the drain to start");

        // The rest happens during the drain.
        uploadGate.SetResult();
        release.SetResult();
        response ??= await responding.WaitAsync(s_timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(protocol == Protocol.Http11 ? HttpVersion.Version11 : HttpVersion.Version20, response.Version);
        body ??= await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();
        await body.CopyToAsync(received).WaitAsync(s_timeout);
        var expected = transfer switch
        {
            Transfer.SlowResponse => "slow response done\n"u8.ToArray(),
            Transfer.Upload => System.Text.Encoding.ASCII.GetBytes($"{Size} {Convert.ToHexString(SHA256.HashData(GatedContent.Bytes))}\n"),
            Transfer.Download => Pattern(Size)[ChunkSize..],
            Transfer.Streaming => Pattern(4 * ChunkSize)[ChunkSize..],
            _ => throw new ArgumentOutOfRangeException(nameof(transfer)),
        };
        Assert.True(expected.AsSpan().SequenceEqual(received.ToArray()), $"received {received.Length} bytes of {expected.Length} expected, or other bytes");

        // A response that had not started when the drain began was the connection's last: the drain ends by itself.
        // One that had started over HTTP/1.1 could not say so; the connection ends when the client closes it.
        var endsByItself = protocol != Protocol.Http11 || transfer is Transfer.SlowResponse or Transfer.Upload;
        if (endsByItself && protocol == Protocol.Http11)
        {
            Assert.True(response.Headers.ConnectionClose, "the response to a request running when the drain began carries Connection: close");
        }

        if (!endsByItself)
        {
            client.Dispose();
        }

        await stopping.WaitAsync(s_timeout);
        var drainEnded = Assert.Single(server.Logs.ReusePortEvents(13));
        output.WriteLine($"{protocol} {transfer}: drain over {Stopwatch.GetElapsedTime(drainStarted).TotalMilliseconds:0} ms after it began: {drainEnded.Message}");
        // Event 13 means the drain ended with no connection left, before its bound (event 18).
        Assert.Empty(server.Logs.ReusePortEvents(18));
        client.Dispose();
    }

    private static void MapTransfers(WebApplication app, TaskCompletionSource entered, TaskCompletionSource release)
    {
        app.MapGet("/slowresponse", async () =>
        {
            entered.SetResult();
            await release.Task;
            return "slow response done\n";
        });

        app.MapPost("/upload", async (HttpRequest request) =>
        {
            entered.SetResult();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[ChunkSize];
            long count = 0;
            int read;
            while ((read = await request.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                count += read;
            }

            return $"{count} {Convert.ToHexString(hash.GetHashAndReset())}\n";
        });

        // Written as fast as the client reads: the server waits on flow control while the client holds off.
        app.MapGet("/download", async (HttpResponse response) =>
        {
            var bytes = Pattern(Size);
            response.ContentLength = bytes.Length;
            await response.Body.WriteAsync(bytes.AsMemory(0, ChunkSize));
            await response.Body.FlushAsync();
            entered.SetResult();
            await response.Body.WriteAsync(bytes.AsMemory(ChunkSize));
        });

        app.MapGet("/streaming", async (HttpResponse response) =>
        {
            var bytes = Pattern(4 * ChunkSize);
            await response.Body.WriteAsync(bytes.AsMemory(0, ChunkSize));
            await response.Body.FlushAsync();
            entered.SetResult();
            await release.Task;
            for (var chunk = 1; chunk < 4; chunk++)
            {
                await response.Body.WriteAsync(bytes.AsMemory(chunk * ChunkSize, ChunkSize));
                await response.Body.FlushAsync();
            }
        });
    }

    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i * 31 + (i >> 16));
        }

        return bytes;
    }

    private static async Task<int> ReadAsync(Stream stream, int count, byte[] buffer)
    {
        var total = 0;
        while (total < count)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(total, count - total)).AsTask().WaitAsync(s_timeout);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    /// <summary>16 MiB of request body: the first 64 KiB at once, the rest once the gate opens (during the drain).</summary>
    private sealed class GatedContent(Task gate) : HttpContent
    {
        public static readonly byte[] Bytes = Pattern(Size);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(Bytes.AsMemory(0, ChunkSize));
            await stream.FlushAsync();
            await gate;
            for (var offset = ChunkSize; offset < Size; offset += ChunkSize)
            {
                await stream.WriteAsync(Bytes.AsMemory(offset, ChunkSize));
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = Size;
            return true;
        }
    }
}
