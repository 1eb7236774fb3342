using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// One message a child process logged with the console's JSON formatter (as <see cref="SampleProcess"/> runs the
/// sample): its category, event id and structured state, so that tests read what happened, not how it was worded.
/// </summary>
[SuppressMessage("Maintainability", "CA1507:Use nameof", Justification = "The names are those of the console's JSON format, not of this record.")]
public sealed record LoggedEvent(string Category, int EventId, string Level, string Message, IReadOnlyDictionary<string, string?> State)
{
    /// <summary>The event of a JSON log line; null for any other line.</summary>
    public static LoggedEvent? TryParse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (!line.StartsWith('{'))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (!root.TryGetProperty("EventId", out var id) || !root.TryGetProperty("Category", out var category))
            {
                return null;
            }

            var state = new Dictionary<string, string?>(StringComparer.Ordinal);
            if (root.TryGetProperty("State", out var values) && values.ValueKind == JsonValueKind.Object)
            {
                foreach (var value in values.EnumerateObject())
                {
                    state[value.Name] = value.Value.ValueKind switch
                    {
                        JsonValueKind.String => value.Value.GetString(),
                        JsonValueKind.Null => null,
                        _ => value.Value.GetRawText(),
                    };
                }
            }

            return new LoggedEvent(
                category.GetString() ?? string.Empty,
                id.GetInt32(),
                root.TryGetProperty("LogLevel", out var level) ? level.GetString() ?? string.Empty : string.Empty,
                root.TryGetProperty("Message", out var message) ? message.GetString() ?? string.Empty : string.Empty,
                state);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A value of the structured state (a template placeholder such as <c>EndPoint</c>); fails if missing.</summary>
    public string this[string key] =>
        State.TryGetValue(key, out var value) && value is not null ? value : throw new KeyNotFoundException($"Event {Category}[{EventId}] has no state '{key}': {Message}");

    /// <summary>A numeric value of the structured state.</summary>
    public long Number(string key) => long.Parse(this[key], System.Globalization.CultureInfo.InvariantCulture);
}
