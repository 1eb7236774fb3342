using Microsoft.Extensions.Logging;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>One message logged by an in-process server.</summary>
public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception)
{
    public override string ToString() => $"{Level} {Category}[{EventId.Id}] {Message}{(Exception is null ? string.Empty : " " + Exception.GetType().Name)}";
}
