namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A fact that runs the sample published with NativeAOT; skipped, saying what to install, only where the native
/// toolchain (clang, lld, zlib1g-dev) is missing. CI installs it.
/// </summary>
public sealed class NativeAotFactAttribute : FactAttribute
{
    private string? _skip;

    public override string Skip
    {
        get => _skip ?? NativeAotSample.MissingToolchain()!;
        set => _skip = value;
    }
}
