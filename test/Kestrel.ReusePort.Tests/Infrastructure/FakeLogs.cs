using Microsoft.Extensions.Logging.Testing;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>What an in-process server logged, by event id and structured state rather than by wording.</summary>
public static class FakeLogs
{
    public const string Category = "Kestrel.ReusePort";

    /// <summary>The messages of category <c>Kestrel.ReusePort</c> with this event id, in order.</summary>
    public static IReadOnlyList<FakeLogRecord> ReusePortEvents(this FakeLogCollector logs, int eventId) =>
        [.. logs.GetSnapshot().Where(r => r.Category == Category && r.Id.Id == eventId)];

    /// <summary>A value of the message's structured state (a template placeholder), as the logger formatted it.</summary>
    public static string? State(this FakeLogRecord record, string key) => record.GetStructuredStateValue(key);
}
