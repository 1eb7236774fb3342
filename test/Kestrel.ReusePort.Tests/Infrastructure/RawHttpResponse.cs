using System.Globalization;
using System.Text.RegularExpressions;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>One HTTP/1.1 response, read in full.</summary>
public sealed partial record RawHttpResponse(int StatusCode, string ReasonPhrase, IReadOnlyDictionary<string, string> Headers, string Body)
{
    /// <summary>The process id in a body like <c>Hello from pid 1234</c>, or null.</summary>
    public int? Pid
    {
        get
        {
            var match = PidPattern().Match(Body);
            return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        }
    }

    /// <summary>The process id in the body; throws if there is none.</summary>
    public int RequirePid() => Pid ?? throw new InvalidDataException($"The response body has no pid: '{Body}'.");

    /// <summary>Whether the server said it closes the connection after this response.</summary>
    public bool ConnectionClose =>
        Headers.TryGetValue("Connection", out var value) && value.Contains("close", StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex(@"pid (\d+)")]
    private static partial Regex PidPattern();
}
