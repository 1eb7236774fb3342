namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>How to start a <see cref="ChildProcess"/>.</summary>
public sealed class ChildProcessStartInfo
{
    /// <summary>The program, found on the PATH if not a path.</summary>
    public required string FileName { get; init; }

    public IReadOnlyList<string> Arguments { get; init; } = [];

    public string? WorkingDirectory { get; init; }

    /// <summary>Variables to set (or, with a null value, to remove) on top of this process's environment.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>
    /// Run as user nobody, group nogroup, without supplementary groups (<c>setpriv</c>); needs root. Whatever the
    /// child runs must be readable by nobody.
    /// </summary>
    public bool RunAsNobody { get; init; }

    /// <summary>
    /// Run as this numeric user id (and the same group id), without supplementary groups: a user of its own that no
    /// other process of the machine has; needs root. Whatever the child runs must be readable by it.
    /// </summary>
    public int? RunAsUserId { get; init; }

    /// <summary>A command the program runs under, e.g. <c>unshare --pid --fork --mount-proc</c>.</summary>
    public IReadOnlyList<string> Wrapper { get; init; } = [];

    /// <summary>If set, the child's descriptor limit (<c>ulimit -n</c>, soft and hard).</summary>
    public int? FileDescriptorLimit { get; init; }

    /// <summary>A name for messages.</summary>
    public string? Name { get; init; }
}
