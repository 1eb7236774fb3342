using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>Keeps every message logged by one in-process server, at every level.</summary>
public sealed class TestLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    /// <summary>The messages of category <c>Kestrel.ReusePort</c> with this event id.</summary>
    public IReadOnlyList<LogEntry> ReusePortEvents(int eventId) =>
        [.. _entries.Where(e => e.Category == "Kestrel.ReusePort" && e.EventId.Id == eventId)];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            entries.Enqueue(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception));
    }
}
