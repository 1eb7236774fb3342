namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>How the sample app runs: JIT (<c>dotnet WebApp.dll</c>) or published with NativeAOT.</summary>
public enum SampleBuild
{
    /// <summary><c>dotnet WebApp.dll</c>, the build the other tests run.</summary>
    Jit,

    /// <summary>The executable that <c>dotnet publish -p:PublishAot=true</c> makes.</summary>
    NativeAot,
}
