using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using HdrHistogram;

namespace LoadTimeline;

/// <summary>
/// Counts every completed request and every error into the interval of the moment it happened (completion for a
/// response, detection for an error), and into the run's totals; a background thread writes each interval as one TSV
/// row once it is over (plus a grace period for recordings still on their way).
/// </summary>
internal sealed class Recorder : IDisposable
{
    private const int KindCount = 4;

    // What an interval without a response reads from.
    private static readonly HistogramBase s_empty = Latency.CreateHistogram();

    private readonly long _t0;
    private readonly DateTime _t0Utc;
    private readonly long _intervalTicks;
    private readonly long _graceTicks;
    private readonly Interval?[] _slots;
    private readonly HistogramBase _total = Latency.CreateHistogram();
    private readonly long[] _totalErrors = new long[KindCount];
    private readonly ConcurrentDictionary<string, long> _errorTypes = new(StringComparer.Ordinal);
    private readonly StreamWriter? _tsv;
    private readonly Thread _writer;
    private readonly ManualResetEventSlim _stopWriter = new();
    private readonly Lock _flushLock = new();
    private long _totalNon2xx;
    private long _late;
    private int _flushed;                 // intervals [0, _flushed) are written and closed
    private long _end = long.MaxValue;    // Stopwatch timestamp at which the run ended
    private volatile bool _stopped;

    public Recorder(TimeSpan interval, TimeSpan duration, string? tsvPath)
    {
        _intervalTicks = Math.Max(1, (long)(interval.TotalSeconds * Stopwatch.Frequency));
        _graceTicks = Math.Max(Stopwatch.Frequency, 2 * _intervalTicks);
        long slots = (long)Math.Ceiling(duration.TotalSeconds * Stopwatch.Frequency / _intervalTicks) + 2;
        _slots = new Interval?[Math.Clamp(slots, 2, 50_000_000)];
        if (tsvPath is not null)
        {
            _tsv = new StreamWriter(tsvPath, append: false, new UTF8Encoding(false)) { AutoFlush = false };
            _tsv.Write("t_s\tepoch_s\tseconds\trequests\trps\terr_connect\terr_read\terr_write\terr_timeout\terrors\tnon2xx\tp50_ms\tp90_ms\tp99_ms\tmax_ms\n");
            _tsv.Flush();
        }

        _t0Utc = DateTime.UtcNow;
        _t0 = Stopwatch.GetTimestamp();
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "timeline writer" };
        _writer.Start();
    }

    /// <summary>Stopwatch timestamp of the start of the run.</summary>
    public long Start => _t0;

    /// <summary>Unix time of the start of the run, in seconds.</summary>
    public double StartEpochSeconds => (_t0Utc - DateTime.UnixEpoch).TotalSeconds;

    public long Requests => _total.TotalCount;

    public long Non2xx => Volatile.Read(ref _totalNon2xx);

    public long Errors(ErrorKind kind) => Volatile.Read(ref _totalErrors[(int)kind]);

    public HistogramBase Total => _total;

    public ConcurrentDictionary<string, long> ErrorTypes => _errorTypes;

    public long LateRecords => Volatile.Read(ref _late);

    /// <summary>A full response to a request sent at <paramref name="sent"/>, complete at <paramref name="done"/>
    /// (Stopwatch timestamps).</summary>
    public void Response(long sent, long done, int status)
    {
        if (_stopped)
        {
            return;
        }

        long nanoseconds = (long)((done - sent) * (1e9 / Stopwatch.Frequency));
        bool bad = status is < 200 or > 299;
        Latency.Record(_total, nanoseconds);
        if (bad)
        {
            Interlocked.Increment(ref _totalNon2xx);
        }

        Interval? interval = Slot(done);
        if (interval is not null)
        {
            Latency.Record(interval.Latency, nanoseconds);
            if (bad)
            {
                Interlocked.Increment(ref interval.Non2xx);
            }
        }
    }

    /// <summary>A failed request, detected at <paramref name="now"/>; <paramref name="type"/> names the exception
    /// for the summary's per-type counts.</summary>
    public void Error(ErrorKind kind, long now, string? type = null)
    {
        if (_stopped)
        {
            return;
        }

        Interlocked.Increment(ref _totalErrors[(int)kind]);
        if (type is not null)
        {
            _errorTypes.AddOrUpdate(type, 1, static (_, n) => n + 1);
        }

        Interval? interval = Slot(now);
        if (interval is not null)
        {
            Interlocked.Increment(ref interval.Errors[(int)kind]);
        }
    }

    /// <summary>Ends the run at <paramref name="end"/>: later recordings are ignored, and every interval up to the end
    /// is written. Call once the load has stopped.</summary>
    public void Stop(long end)
    {
        _end = end;
        _stopped = true;
        _stopWriter.Set();
        _writer.Join();
        long last = Math.Max(0, (end - _t0 - 1) / _intervalTicks);
        Flush((int)Math.Min(last + 1, _slots.Length));
        _tsv?.Flush();
    }

    public void Dispose()
    {
        _stopWriter.Set();
        _tsv?.Dispose();
        _stopWriter.Dispose();
    }

    private Interval? Slot(long timestamp)
    {
        long index = (timestamp - _t0) / _intervalTicks;
        if (index < 0)
        {
            index = 0;
        }

        if (index >= _slots.Length)
        {
            index = _slots.Length - 1;
        }

        if (index < Volatile.Read(ref _flushed))
        {
            Interlocked.Increment(ref _late);
            return null;
        }

        ref Interval? slot = ref _slots[index];
        Interval? interval = Volatile.Read(ref slot);
        if (interval is null)
        {
            Interval created = new();
            interval = Interlocked.CompareExchange(ref slot, created, null) ?? created;
        }

        return interval;
    }

    private void WriterLoop()
    {
        while (true)
        {
            long next = _t0 + ((Volatile.Read(ref _flushed) + 1) * _intervalTicks) + _graceTicks;
            long wait = next - Stopwatch.GetTimestamp();
            if (wait > 0 && _stopWriter.Wait(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency)))
            {
                return;
            }

            if (_stopWriter.IsSet)
            {
                return;
            }

            long ready = (Stopwatch.GetTimestamp() - _graceTicks - _t0) / _intervalTicks;
            Flush((int)Math.Min(ready, _slots.Length - 1));
            _tsv?.Flush();
        }
    }

    /// <summary>Writes and closes intervals [_flushed, <paramref name="upTo"/>).</summary>
    private void Flush(int upTo)
    {
        lock (_flushLock)
        {
            for (int i = Volatile.Read(ref _flushed); i < upTo; i++)
            {
                Volatile.Write(ref _flushed, i + 1);
                Interval? interval = Interlocked.Exchange(ref _slots[i], null);
                WriteRow(i, interval);
            }
        }
    }

    private void WriteRow(int index, Interval? interval)
    {
        if (_tsv is null)
        {
            return;
        }

        long start = _t0 + (index * _intervalTicks);
        long end = Math.Min(start + _intervalTicks, _end);
        double seconds = Math.Max(1e-6, (double)(end - start) / Stopwatch.Frequency);
        double t = (double)(start - _t0) / Stopwatch.Frequency;
        long requests = interval?.Latency.TotalCount ?? 0;
        long connect = interval?.Errors[(int)ErrorKind.Connect] ?? 0;
        long read = interval?.Errors[(int)ErrorKind.Read] ?? 0;
        long write = interval?.Errors[(int)ErrorKind.Write] ?? 0;
        long timeout = interval?.Errors[(int)ErrorKind.Timeout] ?? 0;
        HistogramBase latency = interval?.Latency ?? s_empty;
        CultureInfo c = CultureInfo.InvariantCulture;
        _tsv!.Write(string.Create(c, $"{t:F3}\t{StartEpochSeconds + t:F3}\t{seconds:F3}\t{requests}\t{requests / seconds:F1}\t{connect}\t{read}\t{write}\t{timeout}\t{connect + read + write + timeout}\t{interval?.Non2xx ?? 0}\t{Ms(Latency.PercentileMilliseconds(latency, 0.50))}\t{Ms(Latency.PercentileMilliseconds(latency, 0.90))}\t{Ms(Latency.PercentileMilliseconds(latency, 0.99))}\t{Ms(Latency.MaxMilliseconds(latency))}\n"));
    }

    /// <summary>Milliseconds with 3 decimals, or NaN (which gnuplot skips) for an interval without responses.</summary>
    internal static string Ms(double value) =>
        double.IsNaN(value) ? "NaN" : value.ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>The run's totals as key=value lines.</summary>
    public string SummaryText(double seconds, string url, string mode, int connections, int streams)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        long errors = Enumerable.Range(0, KindCount).Sum(k => Errors((ErrorKind)k));
        StringBuilder s = new();
        s.Append(c, $"url={url}\nmode={mode}\nconnections={connections}\n");
        if (mode == "h2")
        {
            s.Append(c, $"streams={streams}\n");
        }

        s.Append(c, $"start_epoch={StartEpochSeconds:F3}\nseconds={seconds:F3}\nrequests={Requests}\nrps={Requests / Math.Max(seconds, 1e-6):F1}\n");
        s.Append(c, $"errors={errors}\nerrors_connect={Errors(ErrorKind.Connect)}\nerrors_read={Errors(ErrorKind.Read)}\nerrors_write={Errors(ErrorKind.Write)}\nerrors_timeout={Errors(ErrorKind.Timeout)}\nnon2xx={Non2xx}\n");
        s.Append(c, $"p50_ms={Ms(Latency.PercentileMilliseconds(_total, 0.50))}\np90_ms={Ms(Latency.PercentileMilliseconds(_total, 0.90))}\np99_ms={Ms(Latency.PercentileMilliseconds(_total, 0.99))}\nmax_ms={Ms(Latency.MaxMilliseconds(_total))}\n");
        foreach ((string type, long count) in _errorTypes.OrderByDescending(p => p.Value))
        {
            s.Append(c, $"error_type.{type}={count}\n");
        }

        s.Append(c, $"late_records={LateRecords}\n");
        return s.ToString();
    }

    private sealed class Interval
    {
        public readonly HistogramBase Latency = LoadTimeline.Latency.CreateHistogram();
        public readonly long[] Errors = new long[KindCount];
        public long Non2xx;
    }
}
