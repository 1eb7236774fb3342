using System.Collections.Concurrent;
using System.Net;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Real HTTP load on an endpoint from a few concurrent clients, counting every failed request the way wrk does: a
/// refused or reset connection, an end of stream before a full response, a timeout. Nothing is retried.
/// </summary>
public sealed class LoadGenerator : IAsyncDisposable
{
    private const int MaxRecordedErrors = 20;

    private readonly EndPoint _endPoint;
    private readonly LoadMode _mode;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<int, long> _byPid = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly Task[] _clients;
    private long _requests;
    private long _errorCount;
    private long _non2xx;

    private LoadGenerator(EndPoint endPoint, LoadMode mode, int clients)
    {
        _endPoint = endPoint;
        _mode = mode;
        _clients = [.. Enumerable.Range(0, clients).Select(_ => Task.Run(RunClientAsync))];
    }

    public long Requests => Interlocked.Read(ref _requests);

    public static LoadGenerator Start(EndPoint endPoint, LoadMode mode, int clients = 8) => new(endPoint, mode, clients);

    /// <summary>Waits until <paramref name="count"/> more requests have been answered, so that load is known to flow.</summary>
    public Task WaitForMoreRequestsAsync(long count, TimeSpan timeout)
    {
        var target = Requests + count;
        return Eventually.UntilAsync(() => Requests >= target, timeout, $"{count} more requests under load");
    }

    /// <summary>Lets every client finish the request it is on, then reports.</summary>
    public async Task<LoadResult> StopAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_clients);
        return new LoadResult(Requests, Interlocked.Read(ref _errorCount), Interlocked.Read(ref _non2xx),
            new Dictionary<int, long>(_byPid), [.. _errors]);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
    }

    private async Task RunClientAsync()
    {
        RawHttpClient? connection = null;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    RawHttpResponse response;
                    if (_mode == LoadMode.Churn)
                    {
                        response = await RawHttpClient.GetAsync(_endPoint);
                    }
                    else
                    {
                        connection ??= await RawHttpClient.ConnectAsync(_endPoint);
                        response = await connection.GetAsync("/", keepAlive: true);
                        if (response.ConnectionClose)
                        {
                            connection.Dispose();
                            connection = null;
                        }
                    }

                    Interlocked.Increment(ref _requests);
                    if (response.StatusCode is < 200 or > 299)
                    {
                        Interlocked.Increment(ref _non2xx);
                    }
                    else if (response.Pid is int pid)
                    {
                        _byPid.AddOrUpdate(pid, 1, static (_, n) => n + 1);
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref _errorCount);
                    if (_errors.Count < MaxRecordedErrors)
                    {
                        _errors.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {e.GetType().Name}: {e.Message}");
                    }

                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }
}
