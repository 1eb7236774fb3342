namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>A theory like <see cref="NativeAotFactAttribute"/>: skipped only where the native toolchain is missing.</summary>
public sealed class NativeAotTheoryAttribute : TheoryAttribute
{
    private string? _skip;

    public override string Skip
    {
        get => _skip ?? NativeAotSample.MissingToolchain()!;
        set => _skip = value;
    }
}
