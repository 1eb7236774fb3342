using System;
using System.Globalization;
using System.IO;
using System.Text.RegularExpressions;

namespace Kestrel.ReusePort.Shared;

/// <summary>One HTTP/1.1 response, read in full by <see cref="RawHttpClient"/>.</summary>
/// <param name="StatusCode">The status code.</param>
/// <param name="ConnectionClose">Whether the connection ends after this response (the server said
/// <c>Connection: close</c>, or the body ran until the close).</param>
/// <param name="Body">The body as UTF-8 text; empty where the reader did not keep it.</param>
internal readonly partial record struct RawHttpResponse(int StatusCode, bool ConnectionClose, string Body)
{
    /// <summary>The process id in a body like <c>Hello from pid 1234</c> (what the repository's apps answer), or null.</summary>
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

    [GeneratedRegex(@"pid (\d+)")]
    private static partial Regex PidPattern();
}
