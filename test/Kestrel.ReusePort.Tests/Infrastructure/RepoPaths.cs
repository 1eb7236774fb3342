using System.Reflection;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Where the repository and the built sample app are, found from the test assembly's own location.
/// </summary>
public static class RepoPaths
{
    private const string SolutionFileName = "Kestrel.ReusePort.sln";

    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>The directory holding Kestrel.ReusePort.sln.</summary>
    public static string Root => s_root.Value;

    /// <summary>The build configuration of this test assembly (Debug or Release); the sample is used from the same one.</summary>
    public static string Configuration =>
        typeof(RepoPaths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    /// <summary>sample/WebApp/bin/&lt;Configuration&gt;/net10.0.</summary>
    public static string SampleDirectory => Path.Combine(Root, "sample", "WebApp", "bin", Configuration, "net10.0");

    /// <summary>The sample's WebApp.dll, which the tests start with <c>dotnet</c>.</summary>
    public static string SampleAssembly
    {
        get
        {
            var path = Path.Combine(SampleDirectory, "WebApp.dll");
            if (!File.Exists(path))
            {
                throw new FileNotFoundException(
                    $"The sample app is not built at {path}. The test project references sample/WebApp, so building it builds the sample; run 'dotnet build' first.",
                    path);
            }

            return path;
        }
    }

    /// <summary>
    /// test/SystemdApps/<paramref name="name"/>/bin/&lt;Configuration&gt;/net10.0/<paramref name="name"/>.dll: a test app that
    /// the test project builds, like the sample.
    /// </summary>
    public static string TestAppAssembly(string name)
    {
        var path = Path.Combine(Root, "test", "SystemdApps", name, "bin", Configuration, "net10.0", name + ".dll");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The test app is not built at {path}; building the test project builds it.", path);
        }

        return path;
    }

    /// <summary>The <c>dotnet</c> host that runs the test (set by <c>dotnet test</c>), or the one on the PATH.</summary>
    public static string DotnetHost
    {
        get
        {
            var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, SolutionFileName)))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No {SolutionFileName} above {AppContext.BaseDirectory}.");
    }
}
