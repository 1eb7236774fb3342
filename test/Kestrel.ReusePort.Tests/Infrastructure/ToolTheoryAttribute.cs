namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>A theory that needs a program on the PATH (CI installs it); skipped with the reason otherwise.</summary>
public sealed class ToolTheoryAttribute(string tool) : TheoryAttribute
{
    private string? _skip;

    public override string Skip
    {
        get => _skip ?? (IsOnPath(tool) ? null! : $"Needs {tool} on the PATH (.ci/run installs it).");
        set => _skip = value;
    }

    private static bool IsOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Join(directory, program)));
}
