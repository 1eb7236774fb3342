using System.Collections.Concurrent;
using System.Net;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// HTTP/2 load with .NET's HttpClient: a few connections (one handler each), several requests in flight on each. Any
/// exception is an error. HttpClient itself retries a request that a GOAWAY says was not processed; that is part of
/// what is measured, as a client that does retry.
/// </summary>
public sealed class Http2Load : IAsyncDisposable
{
    private const int MaxRecordedErrors = 20;

    private readonly Uri _url;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly List<HttpClient> _clients;
    private readonly Task[] _loops;
    private long _requests;
    private long _errorCount;

    private Http2Load(Uri url, string? trustedThumbprint, int connections, int streams)
    {
        _url = url;
        _clients = [.. Enumerable.Range(0, connections).Select(_ => new HttpClient(new SocketsHttpHandler
        {
            // The test server's certificate was made for the test: trusted by its thumbprint, and nothing else.
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == trustedThumbprint },
            EnableMultipleHttp2Connections = false,
        })
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(10),
        })];
        _loops = [.. _clients.SelectMany(client => Enumerable.Range(0, streams).Select(_ => Task.Run(() => LoopAsync(client))))];
    }

    public long Requests => Interlocked.Read(ref _requests);

    /// <param name="url">What to GET; https or http (HTTP/2 with prior knowledge).</param>
    /// <param name="trustedThumbprint">The thumbprint of the test server's certificate, for https.</param>
    /// <param name="connections">Connections, one handler each.</param>
    /// <param name="streams">Requests in flight on each connection.</param>
    public static Http2Load Start(Uri url, string? trustedThumbprint, int connections = 4, int streams = 4) => new(url, trustedThumbprint, connections, streams);

    public Task WaitForMoreRequestsAsync(long count, TimeSpan timeout)
    {
        var target = Requests + count;
        return Eventually.UntilAsync(() => Requests >= target, timeout, $"{count} more HTTP/2 requests");
    }

    /// <summary>Lets every request in flight finish, then reports the requests answered and the errors.</summary>
    public async Task<(long Requests, IReadOnlyList<string> Errors)> StopAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_loops);
        var errors = _errors.ToList();
        if (Interlocked.Read(ref _errorCount) > errors.Count)
        {
            errors.Add($"… {Interlocked.Read(ref _errorCount) - errors.Count} more");
        }

        return (Requests, errors);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        foreach (var client in _clients)
        {
            client.Dispose();
        }

        _stop.Dispose();
    }

    private async Task LoopAsync(HttpClient client)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var response = await client.GetAsync(_url);
                await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode)
                {
                    throw new HttpRequestException($"status {(int)response.StatusCode}");
                }

                Interlocked.Increment(ref _requests);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Interlocked.Increment(ref _errorCount);
                if (_errors.Count < MaxRecordedErrors)
                {
                    _errors.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {e.GetType().Name}: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : string.Empty)}");
                }
            }
        }
    }
}
