using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using HdrHistogram;

namespace LoadTimeline;

internal static class Program
{
    private const string Usage = """
        LoadTimeline: closed-loop HTTP load with throughput, latency percentiles and errors per interval.

        Usage: LoadTimeline --url URL [options]
          --url URL            http:// or https:// URL to GET (required)
          --connections N      connections (default 16)
          --mode M             churn (a new connection per request, Connection: close), keepalive (HTTP/1.1
                               keep-alive; reconnects when the server closes or says Connection: close), or h2
                               (HttpClient over HTTP/2: TLS for https, h2c prior knowledge for http) (default keepalive)
          --streams M          h2: concurrent requests per connection (default 4)
          --duration S         seconds to run (default 10); SIGINT or SIGTERM ends the run earlier, with the report
          --interval-ms MS     interval of the timeline (default 250)
          --out FILE           per-interval TSV; the totals go to FILE.summary (key=value)
          --timeout-ms MS      per request (and per connect) timeout (default 2000)
          --error-pause-ms MS  pause of a connection after an error before its next request (default 10; 0 = none,
                               as wrk: a refused port is then retried in a busy loop)
          --threads N          HTTP/1.1: socket event threads, each running its connections' completions (default 1)
          --no-inline          HTTP/1.1: run socket completions on the thread pool instead of the event threads

        Never retries a request: a refused or failed connect (connect), a reset or an end of the connection before a
        full response (read), a failed send (write) or no response within the timeout (timeout) is one error.
        Non-2xx responses are counted apart. Latency: from sending the request to the end of the response (a connect is
        not included, as in wrk).
        """;

    public static int Main(string[] args)
    {
        LoadOptions options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (options.Mode != LoadMode.H2)
        {
            // Both are read once, when System.Net.Sockets' event engine starts, i.e. before the first socket operation
            // below. Inline: socket completions run on the epoll thread, as wrk's event loop does, instead of hopping to
            // the thread pool (about half the CPU per request for a client that only parses a few bytes per response).
            if (options.InlineCompletions)
            {
                Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
            }

            // One epoll thread by default, as wrk -t1: ~10% less CPU per request than two on 2 cores.
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT", options.Threads.ToString(CultureInfo.InvariantCulture));
        }

        return Run(options);
    }

    private static int Run(LoadOptions options)
    {
        using CancellationTokenSource stop = new();
        using Recorder recorder = new(options.Interval, options.Duration, options.Out);
        using ManualResetEventSlim signalled = new();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            signalled.Set();
        }

        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        List<Task> tasks = [];
        List<Http1Connection> http1 = [];
        List<Http2Connection> http2 = [];
        if (options.Mode == LoadMode.H2)
        {
            for (int i = 0; i < options.Connections; i++)
            {
                Http2Connection connection = new(options, recorder, stop.Token);
                http2.Add(connection);
                tasks.Add(connection.RunAsync());
            }
        }
        else
        {
            EndPoint endPoint = Resolve(options.Url);
            byte[] request = Http1Connection.EncodeRequest(options.Url, close: options.Mode == LoadMode.Churn);
            for (int i = 0; i < options.Connections; i++)
            {
                Http1Connection connection = new(options, recorder, endPoint, request, stop.Token);
                http1.Add(connection);
                tasks.Add(Task.Run(connection.RunAsync));
            }
        }

        // The watchdog of the HTTP/1.1 connections' timeouts (HttpClient has its own), and the end of the run.
        long timeoutTicks = (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
        long deadline = recorder.Start + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
        TimeSpan tick = TimeSpan.FromMilliseconds(Math.Clamp(options.Timeout.TotalMilliseconds / 20, 5, 50));
        while (true)
        {
            long now = Stopwatch.GetTimestamp();
            if (now >= deadline)
            {
                break;
            }

            TimeSpan wait = TimeSpan.FromSeconds(Math.Min(tick.TotalSeconds, (double)(deadline - now) / Stopwatch.Frequency));
            if (signalled.Wait(wait))
            {
                break;
            }

            now = Stopwatch.GetTimestamp();
            foreach (Http1Connection connection in http1)
            {
                connection.CheckTimeout(now, timeoutTicks);
            }
        }

        long end = Stopwatch.GetTimestamp();
        recorder.Stop(end);
        stop.Cancel();
        foreach (Http1Connection connection in http1)
        {
            connection.Abort();
        }

        try
        {
            if (!Task.WaitAll([.. tasks], TimeSpan.FromSeconds(5)))
            {
                Console.Error.WriteLine("warning: some connections did not stop within 5 s");
            }
        }
        catch (AggregateException e)
        {
            // the run is over and counted; a connection loop that failed is reported, not fatal
            Console.Error.WriteLine($"warning: a connection loop failed: {e.InnerException?.Message}");
        }

        foreach (Http2Connection connection in http2)
        {
            connection.Dispose();
        }

        double seconds = (double)(end - recorder.Start) / Stopwatch.Frequency;
        PrintReport(options, recorder, seconds);
        if (options.Out is not null)
        {
            File.WriteAllText(options.Out + ".summary", recorder.SummaryText(seconds, options.Url.ToString(), options.ModeName, options.Connections, options.Streams));
        }

        return 0;
    }

    /// <summary>A wrk-like report (benchmark/load/common.sh's parse_wrk reads it).</summary>
    private static void PrintReport(LoadOptions o, Recorder r, double seconds)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        HistogramBase total = r.Total;
        string Ms(double q) => double.IsNaN(q) ? "NaN" : string.Create(c, $"{q:F2}ms");
        using StringWriter w = new(c);
        w.WriteLine($"Running {seconds:F2}s test @ {o.Url}");
        w.WriteLine($"  LoadTimeline {o.ModeName}, {o.Connections} connections{(o.Mode == LoadMode.H2 ? $" x {o.Streams} streams" : string.Empty)}, {o.Interval.TotalMilliseconds:F0} ms intervals, timeout {o.Timeout.TotalMilliseconds:F0} ms");
        w.WriteLine("  Latency Distribution");
        w.WriteLine($"     50%  {Ms(Latency.PercentileMilliseconds(total, 0.50))}");
        w.WriteLine($"     90%  {Ms(Latency.PercentileMilliseconds(total, 0.90))}");
        w.WriteLine($"     99%  {Ms(Latency.PercentileMilliseconds(total, 0.99))}");
        w.WriteLine($"    max   {Ms(Latency.MaxMilliseconds(total))}");
        w.WriteLine($"  {r.Requests} requests in {seconds:F2}s");
        long errors = r.Errors(ErrorKind.Connect) + r.Errors(ErrorKind.Read) + r.Errors(ErrorKind.Write) + r.Errors(ErrorKind.Timeout);
        if (errors > 0)
        {
            w.WriteLine($"  Socket errors: connect {r.Errors(ErrorKind.Connect)}, read {r.Errors(ErrorKind.Read)}, write {r.Errors(ErrorKind.Write)}, timeout {r.Errors(ErrorKind.Timeout)}");
        }

        foreach ((string type, long count) in r.ErrorTypes.OrderByDescending(p => p.Value))
        {
            w.WriteLine($"    {type}: {count}");
        }

        if (r.Non2xx > 0)
        {
            w.WriteLine($"  Non-2xx or 3xx responses: {r.Non2xx}");
        }

        w.WriteLine($"Requests/sec: {r.Requests / Math.Max(seconds, 1e-6):F2}");
        long attempts = Math.Max(1, r.Requests + errors);
        w.WriteLine($"  (LoadTimeline itself: {GC.GetTotalAllocatedBytes() / attempts} B allocated per request, {GC.CollectionCount(0)} gen0 GCs, {Environment.CpuUsage.TotalTime.TotalMilliseconds * 1000 / attempts:F1} us CPU per request)");
        Console.Out.Write(w.ToString());
        Console.Out.Flush();
    }

    private static IPEndPoint Resolve(Uri url)
    {
        if (IPAddress.TryParse(url.DnsSafeHost, out IPAddress? address))
        {
            return new IPEndPoint(address, url.Port);
        }

        IPAddress[] addresses = Dns.GetHostAddresses(url.DnsSafeHost);
        IPAddress first = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses[0];
        return new IPEndPoint(first, url.Port);
    }

    private static LoadOptions Parse(string[] args)
    {
        Uri? url = null;
        int connections = 16, streams = 4, threads = 1;
        double duration = 10, intervalMs = 250, timeoutMs = 2000, pauseMs = 10;
        LoadMode mode = LoadMode.KeepAlive;
        string? output = null;
        bool inline = true;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            double Number(double min)
            {
                string name = args[i];
                string text = Value();
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || n < min)
                {
                    throw new ArgumentException($"{name} must be a number >= {min.ToString(CultureInfo.InvariantCulture)}, not '{text}'");
                }

                return n;
            }

            switch (args[i])
            {
                case "--url":
                    string text = Value();
                    if (!Uri.TryCreate(text, UriKind.Absolute, out url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                    {
                        throw new ArgumentException($"--url must be an absolute http or https URL, not '{text}'");
                    }

                    break;
                case "--connections": connections = (int)Number(1); break;
                case "--streams": streams = (int)Number(1); break;
                case "--threads": threads = (int)Number(1); break;
                case "--duration": duration = Number(0.001); break;
                case "--interval-ms": intervalMs = Number(1); break;
                case "--timeout-ms": timeoutMs = Number(1); break;
                case "--error-pause-ms": pauseMs = Number(0); break;
                case "--out": output = Value(); break;
                case "--no-inline": inline = false; break;
                case "--mode":
                    mode = Value() switch
                    {
                        "churn" => LoadMode.Churn,
                        "keepalive" => LoadMode.KeepAlive,
                        "h2" => LoadMode.H2,
                        string other => throw new ArgumentException($"--mode must be churn, keepalive or h2, not '{other}'"),
                    };
                    break;
                case "-h" or "--help":
                    Console.Out.WriteLine(Usage);
                    Environment.Exit(0);
                    break;
                default:
                    throw new ArgumentException($"unknown option {args[i]}");
            }
        }

        return new LoadOptions
        {
            Url = url ?? throw new ArgumentException("--url is required"),
            Connections = connections,
            Streams = streams,
            Mode = mode,
            Duration = TimeSpan.FromSeconds(duration),
            Interval = TimeSpan.FromMilliseconds(intervalMs),
            Timeout = TimeSpan.FromMilliseconds(timeoutMs),
            ErrorPause = TimeSpan.FromMilliseconds(pauseMs),
            Out = output,
            InlineCompletions = inline,
            Threads = threads,
        };
    }
}
