namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>A theory that needs root, like <see cref="RootFactAttribute"/>; skipped with the reason otherwise.</summary>
public sealed class RootTheoryAttribute : TheoryAttribute
{
    private string? _skip;

    /// <summary>Also needs /usr/bin/perl, run as nobody as a process of another user.</summary>
    public bool RequiresPerl { get; set; }

    public override string Skip
    {
        get => _skip ?? RootFactAttribute.MissingRequirement(RequiresPerl)!;
        set => _skip = value;
    }
}
