using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// The sample app (sample/WebApp) published with NativeAOT, once per test run: the executable that
/// <c>dotnet publish sample/WebApp -c Release -r linux-x64 -p:PublishAot=true</c> makes, or the one named by
/// <c>KESTREL_REUSEPORT_NATIVEAOT_SAMPLE</c> (.ci/run publishes it and sets that).
/// </summary>
/// <remarks>
/// The publish goes to artifacts/nativeaot under the repository, with its own intermediate folders, so that it never
/// touches the sample's JIT build that the other tests run; it is incremental, so only the first run pays the native
/// compilation (a few minutes of CPU). A publish with a trim or AOT warning (IL2xxx, IL3xxx) fails.
/// </remarks>
public static partial class NativeAotSample
{
    /// <summary>The environment variable naming a published NativeAOT sample executable to use instead.</summary>
    public const string ExecutableVariable = "KESTREL_REUSEPORT_NATIVEAOT_SAMPLE";

    private static readonly TimeSpan s_publishTimeout = TimeSpan.FromMinutes(20);
    private static readonly Lazy<Task<string>> s_executable = new(PublishOnceAsync);

    /// <summary>The folder the publish writes: artifacts/nativeaot under the repository.</summary>
    public static string Folder => Path.Combine(RepoPaths.Root, "artifacts", "nativeaot");

    /// <summary>
    /// The command that publishes the sample with NativeAOT, as the README documents it, plus the folders this test run
    /// uses.
    /// </summary>
    public static IReadOnlyList<string> PublishArguments =>
    [
        "publish", Path.Combine(RepoPaths.Root, "sample", "WebApp", "WebApp.csproj"),
        "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true",
        "--artifacts-path", Path.Combine(Folder, "build"), "-o", Path.Combine(Folder, "publish"),
        // No build servers left behind by a test run.
        "-nodeReuse:false", "-p:UseSharedCompilation=false",
    ];

    /// <summary>What a NativeAOT publish needs here and is missing (clang, lld, zlib), or null.</summary>
    public static string? MissingToolchain()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            return "The NativeAOT tests publish for linux-x64 and run on Linux x64 only.";
        }

        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ExecutableVariable)))
        {
            return null;
        }

        var missing = new List<string>();
        if (!IsOnPath("clang"))
        {
            missing.Add("clang");
        }

        if (!IsOnPath("ld.lld"))
        {
            missing.Add("lld");
        }

        if (!File.Exists("/usr/include/zlib.h"))
        {
            missing.Add("zlib1g-dev");
        }

        return missing.Count == 0
            ? null
            : $"NativeAOT needs a native toolchain, and this machine lacks {string.Join(", ", missing)}: install it with " +
              "'apt-get install clang lld zlib1g-dev' (.ci/run does), or set " + ExecutableVariable + " to a published sample.";
    }

    /// <summary>The NativeAOT executable of the sample, published on first use.</summary>
    public static Task<string> PublishAsync() => s_executable.Value;

    private static async Task<string> PublishOnceAsync()
    {
        if (Environment.GetEnvironmentVariable(ExecutableVariable) is { Length: > 0 } given)
        {
            return File.Exists(given)
                ? given
                : throw new FileNotFoundException($"{ExecutableVariable} names {given}, which does not exist.", given);
        }

        var startInfo = new ProcessStartInfo(RepoPaths.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepoPaths.Root,
        };
        foreach (var argument in PublishArguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        // The test host runs under 'dotnet test', whose MSBuild variables would steer the child build elsewhere.
        foreach (var variable in startInfo.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            startInfo.Environment.Remove(variable);
        }

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException("dotnet publish did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(s_publishTimeout))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"The NativeAOT publish of the sample took more than {s_publishTimeout}.");
            }
        }

        var output = await stdout + await stderr;
        var command = $"dotnet {string.Join(' ', PublishArguments)}";
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{command}' failed with exit code {process.ExitCode}:\n{output}");
        }

        var warnings = TrimOrAotWarning().Matches(output).Select(m => m.Value).Distinct().ToList();
        if (warnings.Count > 0)
        {
            throw new InvalidOperationException($"'{command}' warned ({string.Join(", ", warnings)}); the sample must publish AOT-clean:\n{output}");
        }

        var executable = Path.Combine(Folder, "publish", "WebApp");
        return File.Exists(executable)
            ? executable
            : throw new FileNotFoundException($"'{command}' made no {executable}:\n{output}", executable);
    }

    private static bool IsOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Join(directory, program)));

    [GeneratedRegex(@"warning IL[23]\d{3}")]
    private static partial Regex TrimOrAotWarning();
}
