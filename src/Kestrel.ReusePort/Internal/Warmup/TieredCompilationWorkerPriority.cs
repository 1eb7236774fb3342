using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Posix;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.ReusePort.Internal.Warmup;

/// <summary>
/// Raises the nice value of the runtime's tiered-compilation worker thread (<c>.NET Tiered Com</c> in
/// /proc/self/task/*/comm) to <see cref="ReusePortSocketTransportOptions.TieredCompilationWorkerNice"/> during the
/// first minutes of the process, so that a freshly deployed JIT instance recompiles its hot path with CPU that would
/// otherwise sit idle, not with CPU taken from serving.
/// </summary>
/// <remarks>
/// The runtime creates that thread on demand and lets it exit after a few idle seconds
/// (<c>DOTNET_TC_BackgroundWorkerTimeoutMs</c>, 4 s by default), so one look at start-up would miss it: the threads are
/// looked at every <see cref="Period"/> until <see cref="Window"/> has passed. Raising a nice value needs no privilege;
/// lowering it back would, so it is never done. Under NativeAOT, or without tiered compilation, there is no such thread
/// and the watch ends at its first look.
/// </remarks>
internal sealed partial class TieredCompilationWorkerPriority(
    IOptions<ReusePortSocketTransportOptions> options,
    ILoggerFactory loggerFactory) : IHostedService, IDisposable
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(ReusePortLog.CategoryName);

    /// <summary>The name the runtime gives the worker, as /proc shows it (15 characters at most).</summary>
    public const string WorkerThreadName = ".NET Tiered Com";

    /// <summary>How often the threads are looked at.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);

    /// <summary>How long after start the threads are looked at: a deploy's tier-up under traffic is over by then.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(2);

    private const int PrioProcess = 0;

    private readonly HashSet<int> _lowered = [];
    private Timer? _timer;
    private long _deadline;
    private bool _failureLogged;
    private int _looking;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var nice = options.Value.TieredCompilationWorkerNice;
        if (nice == 0 || !NativeMethods.IsSupported || !RuntimeFeature.IsDynamicCodeCompiled || !Directory.Exists("/proc/self/task"))
        {
            return Task.CompletedTask;
        }

        _deadline = Environment.TickCount64 + (long)Window.TotalMilliseconds;
        _timer = new Timer(static state => ((TieredCompilationWorkerPriority)state!).Look(), this, TimeSpan.Zero, Period);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _timer?.Dispose();

    private void Look()
    {
        // A slow look (a busy box) must not overlap the next one.
        if (Interlocked.Exchange(ref _looking, 1) == 1)
        {
            return;
        }

        try
        {
            if (Environment.TickCount64 > _deadline)
            {
                _timer?.Dispose();
                return;
            }

            var nice = options.Value.TieredCompilationWorkerNice;
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                if (!int.TryParse(Path.GetFileName(task), NumberStyles.None, CultureInfo.InvariantCulture, out var threadId) ||
                    _lowered.Contains(threadId) || !IsWorker(task))
                {
                    continue;
                }

                if (SetPriority(PrioProcess, threadId, nice) == 0)
                {
                    _lowered.Add(threadId);
                    ReusePortLog.TieredCompilationWorkerLowered(_logger, threadId, nice);
                }
                else if (!_failureLogged)
                {
                    _failureLogged = true;
                    ReusePortLog.TieredCompilationWorkerNotLowered(_logger, threadId, nice, Marshal.GetLastPInvokeError());
                }
            }
        }
        catch (IOException)
        {
            // A thread that exits while it is looked at.
        }
        catch (UnauthorizedAccessException)
        {
        }
        finally
        {
            Volatile.Write(ref _looking, 0);
        }
    }

    private static bool IsWorker(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') == WorkerThreadName;
        }
        catch (IOException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);
}
