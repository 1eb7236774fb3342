using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A child process whose stdout and stderr lines are captured into a thread-safe buffer that tests can wait on.
/// <see cref="Dispose"/> always kills and reaps what is left, and every child still running when the test process exits
/// is killed too, so a failing test leaks no process.
/// </summary>
/// <remarks>
/// <see cref="ChildProcessStartInfo.RunAsNobody"/> and <see cref="ChildProcessStartInfo.FileDescriptorLimit"/> wrap the
/// command in <c>setpriv</c> and <c>bash -c 'ulimit -n N &amp;&amp; exec "$@"'</c>, which both exec: <see cref="Pid"/>
/// is the pid of the program itself.
/// </remarks>
public class ChildProcess : IDisposable
{
    private static readonly ConcurrentDictionary<ChildProcess, byte> s_running = new();

    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly List<string> _lines = [];
    private TaskCompletionSource _changed = NewSignal();
    private int _openStreams = 2;
    private int _disposed;

    static ChildProcess()
    {
        // Last resort, for a test host that exits without disposing (e.g. a run that was aborted).
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var child in s_running.Keys)
            {
                child.Kill();
            }
        };
    }

    protected ChildProcess(ChildProcessStartInfo startInfo)
    {
        ArgumentNullException.ThrowIfNull(startInfo);
        var argv = new List<string> { startInfo.FileName };
        argv.AddRange(startInfo.Arguments);
        if (startInfo.FileDescriptorLimit is { } limit)
        {
            argv.InsertRange(0, ["bash", "-c", $"ulimit -n {limit.ToString(CultureInfo.InvariantCulture)} && exec \"$@\"", "bash"]);
        }

        if (startInfo.RunAsNobody || startInfo.RunAsUserId is not null)
        {
            if (LibC.GetEffectiveUserId() != 0)
            {
                throw new InvalidOperationException("Only root can start a process as another user.");
            }

            var user = startInfo.RunAsUserId is { } id ? id.ToString(CultureInfo.InvariantCulture) : "nobody";
            var group = startInfo.RunAsUserId is { } gid ? gid.ToString(CultureInfo.InvariantCulture) : "nogroup";
            argv.InsertRange(0, ["setpriv", $"--reuid={user}", $"--regid={group}", "--clear-groups"]);
        }

        argv.InsertRange(0, startInfo.Wrapper);

        var info = new ProcessStartInfo(argv[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = startInfo.WorkingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in argv.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in startInfo.Environment)
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        Name = startInfo.Name ?? Path.GetFileName(startInfo.FileName);
        CommandLine = string.Join(' ', argv);
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Start();
        s_running.TryAdd(this, 0);
        Pid = _process.Id;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Name { get; }

    public string CommandLine { get; }

    public int Pid { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code; for a process killed by signal N, 128 + N.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>The lines written so far to stdout and stderr, interleaved as they arrived.</summary>
    public IReadOnlyList<string> OutputLines
    {
        get
        {
            lock (_gate)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>Everything written so far, one line each.</summary>
    public string Output => string.Join('\n', OutputLines);

    public static ChildProcess Start(ChildProcessStartInfo startInfo) => new(startInfo);

    /// <summary>
    /// Waits for a line (already written or to come) that matches; fails when the deadline passes or the process has
    /// closed its output without writing one. The failure message carries the whole output.
    /// </summary>
    public async Task<string> WaitForOutputAsync(Func<string, bool> predicate, TimeSpan timeout, string? description = null)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var deadline = DateTime.UtcNow + timeout;
        var checkedLines = 0;
        while (true)
        {
            Task changed;
            bool closed;
            lock (_gate)
            {
                for (; checkedLines < _lines.Count; checkedLines++)
                {
                    if (predicate(_lines[checkedLines]))
                    {
                        return _lines[checkedLines];
                    }
                }

                closed = _openStreams == 0;
                changed = _changed.Task;
            }

            if (closed)
            {
                throw new InvalidOperationException(
                    $"{this} ended its output{ExitDescription()} without writing {description ?? "the awaited line"}.\n{Output}");
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw new TimeoutException(
                    $"{this} did not write {description ?? "the awaited line"} within {timeout.TotalSeconds:0.#} s.\n{Output}");
            }

            try
            {
                await changed.WaitAsync(remaining);
            }
            catch (TimeoutException)
            {
                // Looked at once more above, then reported.
            }
        }
    }

    /// <summary>Whether a line written so far matches.</summary>
    public bool HasOutput(Func<string, bool> predicate) => OutputLines.Any(predicate);

    /// <summary>
    /// Whether a line is a message with this event id: a JSON log line (<see cref="LoggedEvent"/>), or one of the
    /// console's simple formatter (<c>info: Kestrel.ReusePort[1] …</c>) or systemd formatter (<c>&lt;6&gt;Kestrel.ReusePort[1] …</c>,
    /// which Hosting.Systemd's <c>UseSystemd()</c> switches to). Tests match the event, never the wording.
    /// </summary>
    public static bool IsEvent(string line, int eventId, string category = "Kestrel.ReusePort")
    {
        ArgumentNullException.ThrowIfNull(line);
        if (LoggedEvent.TryParse(line) is { } logged)
        {
            return logged.EventId == eventId && logged.Category == category;
        }

        var at = line.IndexOf(string.Create(CultureInfo.InvariantCulture, $"{category}[{eventId}]"), StringComparison.Ordinal);
        return at == 0 || (at > 0 && line[at - 1] is ' ' or '>');
    }

    /// <summary>Waits for a message with this event id (see <see cref="IsEvent"/>); returns its line.</summary>
    public Task<string> WaitForEventAsync(int eventId, TimeSpan timeout, string category = "Kestrel.ReusePort") =>
        WaitForOutputAsync(line => IsEvent(line, eventId, category), timeout, $"event {category}[{eventId}]");

    /// <summary>Waits for a message with this event id whose structured state matches; returns it.</summary>
    public async Task<LoggedEvent> WaitForEventAsync(int eventId, Func<LoggedEvent, bool> predicate, TimeSpan timeout, string category = "Kestrel.ReusePort")
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var line = await WaitForOutputAsync(
            line => LoggedEvent.TryParse(line) is { } e && e.EventId == eventId && e.Category == category && predicate(e),
            timeout,
            $"event {category}[{eventId}] as expected");
        return LoggedEvent.TryParse(line)!;
    }

    /// <summary>How many messages with this event id were written so far.</summary>
    public int CountEvents(int eventId, string category = "Kestrel.ReusePort") =>
        OutputLines.Count(line => IsEvent(line, eventId, category));

    /// <summary>Whether a JSON-logged message with this event id (and matching <paramref name="predicate"/>) was written so far.</summary>
    public bool HasEvent(int eventId, Func<LoggedEvent, bool>? predicate = null, string category = "Kestrel.ReusePort") =>
        Events(eventId, category).Any(predicate ?? (_ => true));

    /// <summary>The JSON-logged messages with this event id so far, in order.</summary>
    public IReadOnlyList<LoggedEvent> Events(int eventId, string category = "Kestrel.ReusePort") =>
        [.. OutputLines.Select(LoggedEvent.TryParse).OfType<LoggedEvent>().Where(e => e.EventId == eventId && e.Category == category)];

    /// <summary>Sends SIGTERM, as a service manager stopping the app would.</summary>
    public void SignalTerm() => Signal(LibC.SigTerm);

    public void Signal(int signal)
    {
        if (LibC.Kill(Pid, signal) != 0 && !HasExited)
        {
            throw new InvalidOperationException($"kill({Pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}.");
        }
    }

    /// <summary>
    /// SIGSTOP, and waits until every thread has stopped: the signal takes effect as each thread is next scheduled, and
    /// a thread still running could accept one more connection meanwhile.
    /// </summary>
    public Task FreezeAsync()
    {
        Signal(LibC.SigStop);
        return Eventually.UntilAsync(
            () => Directory.GetDirectories($"/proc/{Pid}/task").All(task =>
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
            }),
            TimeSpan.FromSeconds(10),
            $"{this} to stop");
    }

    /// <summary>SIGCONT: lets a frozen process run again.</summary>
    public void Thaw() => Signal(LibC.SigCont);

    /// <summary>SIGKILL, if it still runs.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // Exited meanwhile.
        }
    }

    /// <summary>Waits until the process exited and its output is read; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"{this} did not exit within {timeout.TotalSeconds:0.#} s.\n{Output}");
        }

        return _process.ExitCode;
    }

    public override string ToString() => $"{Name} (pid {Pid})";

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        Kill();
        try
        {
            // Reaps it and drains its output.
            _process.WaitForExit(15_000);
        }
        catch (InvalidOperationException)
        {
        }

        s_running.TryRemove(this, out _);
        _process.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private string ExitDescription()
    {
        try
        {
            return _process.HasExited ? $" (exit code {_process.ExitCode})" : string.Empty;
        }
        catch (InvalidOperationException)
        {
            return string.Empty;
        }
    }

    private void OnLine(string? line)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            if (line is null)
            {
                _openStreams--;
            }
            else
            {
                _lines.Add(line);
            }

            signal = _changed;
            _changed = NewSignal();
        }

        signal.TrySetResult();
    }
}
