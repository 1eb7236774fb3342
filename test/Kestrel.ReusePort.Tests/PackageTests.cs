using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// The package as users get it: packed with its README, XML docs, symbols and repository metadata; and a one-line app
/// built against the .nupkg from a folder feed, not against the project, serves on a real port.
/// </summary>
public partial class PackageTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_buildTimeout = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task AOneLineAppBuiltAgainstThePackageServes()
    {
        var work = Directory.CreateTempSubdirectory("kestrel-reuseport-package-").FullName;
        try
        {
            // CI packs first and points the tests at its package; a plain `dotnet test` packs one here.
            var feed = Environment.GetEnvironmentVariable("KESTREL_REUSEPORT_PACKAGES") ?? Path.Join(work, "feed");
            if (!Directory.Exists(feed) || Directory.GetFiles(feed, "Kestrel.ReusePort.*.nupkg").Length == 0)
            {
                await RunAsync("pack", [Path.Join(RepoPaths.Root, "src", "Kestrel.ReusePort", "Kestrel.ReusePort.csproj"), "-c", "Release", "-o", feed, "-p:ContinuousIntegrationBuild=true"]);
            }

            var package = Assert.Single(Directory.GetFiles(feed, "Kestrel.ReusePort.*.nupkg"), p => !p.EndsWith(".symbols.nupkg", StringComparison.Ordinal));
            var version = VersionPattern().Match(Path.GetFileName(package)).Groups[1].Value;
            Assert.True(File.Exists(Path.ChangeExtension(package, ".snupkg")), "a symbols package beside the package");
            var libraryHash = InspectPackage(package, version);

            // A one-line app, outside the repository, restoring from that folder alone into a package folder of its own.
            var app = Path.Join(work, "app");
            Directory.CreateDirectory(app);
            foreach (var file in Directory.GetFiles(Path.Join(RepoPaths.Root, "test", "PackageConsumer")))
            {
                File.Copy(file, Path.Join(app, Path.GetFileName(file)));
            }

            // The package comes from that folder alone; its dependencies (Microsoft.Extensions.Hosting.Systemd and what
            // that needs) from the packages this machine restored already, so that nothing is fetched from a network.
            var restored = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages
                ? packages
                : Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            File.WriteAllText(Path.Join(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="package-under-test" value="{feed}" />
                    <add key="restored" value="{restored}" />
                  </packageSources>
                  <packageSourceMapping>
                    <packageSource key="package-under-test">
                      <package pattern="Kestrel.ReusePort" />
                    </packageSource>
                    <packageSource key="restored">
                      <package pattern="*" />
                    </packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
            await RunAsync("build", [app, "-c", "Release", $"-p:KestrelReusePortVersion={version}", $"-p:RestorePackagesPath={Path.Join(work, "packages")}"]);
            var built = Path.Join(app, "bin", "Release", "net10.0");
            Assert.Equal(libraryHash, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.Join(built, "Kestrel.ReusePort.dll")))));

            var port = PortAllocator.GetFreePort();
            using var consumer = ChildProcess.Start(new ChildProcessStartInfo
            {
                FileName = RepoPaths.DotnetHost,
                Arguments = [Path.Join(built, "PackageConsumer.dll"), "--urls", $"http://127.0.0.1:{port}", "--Logging:Console:FormatterName=json"],
                WorkingDirectory = built,
                Environment = new Dictionary<string, string?> { ["ASPNETCORE_URLS"] = null },
                Name = "the package consumer",
            });
            // Event 1: warmed up and accepting on the port.
            await consumer.WaitForEventAsync(1, e => e["EndPoint"] == $"127.0.0.1:{port}", TimeSpan.FromSeconds(30));
            var response = await RawHttpClient.GetAsync(new IPEndPoint(IPAddress.Loopback, port));
            Assert.Equal(200, response.StatusCode);
            Assert.StartsWith("Hello from the package", response.Body, StringComparison.Ordinal);
            output.WriteLine($"{Path.GetFileName(package)}: a one-line app built from it answered \"{response.Body.Trim()}\" on port {port}.");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Checks what the package holds; returns the SHA-256 of its library, to recognise it in an app's output.</summary>
    private string InspectPackage(string package, string version)
    {
        using var zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("lib/net10.0/Kestrel.ReusePort.dll", entries);
        Assert.Contains("lib/net10.0/Kestrel.ReusePort.xml", entries);
        Assert.Contains("README.md", entries);

        using (var nuspec = zip.GetEntry("Kestrel.ReusePort.nuspec")!.Open())
        {
            // The schema's namespace depends on what the nuspec uses (a dependency's exclude attribute needs 2013/05).
            var root = XDocument.Load(nuspec).Root!;
            var ns = root.Name.Namespace;
            var metadata = root.Element(ns + "metadata")!;
            Assert.Equal(version, metadata.Element(ns + "version")!.Value);
            Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
            var repository = metadata.Element(ns + "repository")!;
            Assert.StartsWith("https://", repository.Attribute("url")!.Value, StringComparison.Ordinal);
            Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")!.Value);
            output.WriteLine($"repository {repository.Attribute("url")!.Value} at {repository.Attribute("commit")!.Value}");
        }

        // The package page shows this README: every link absolute, no image that its policy could block.
        using (var readme = new StreamReader(zip.GetEntry("README.md")!.Open()))
        {
            var text = readme.ReadToEnd();
            var links = LinkPattern().Matches(text).Select(m => m.Groups[2].Value).ToList();
            Assert.NotEmpty(links);
            Assert.All(links, link => Assert.Matches("^(https://|mailto:)", link));
            Assert.DoesNotMatch(@"!\[[^\]]*\]\(", text);
        }

        using var library = zip.GetEntry("lib/net10.0/Kestrel.ReusePort.dll")!.Open();
        return Convert.ToHexString(SHA256.HashData(library));
    }

    private static async Task RunAsync(string verb, IReadOnlyList<string> arguments)
    {
        using var dotnet = ChildProcess.Start(new ChildProcessStartInfo
        {
            FileName = RepoPaths.DotnetHost,
            Arguments = [verb, .. arguments, "--nologo"],
            WorkingDirectory = Path.GetTempPath(),
            Environment = new Dictionary<string, string?> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["MSBUILDNOINPROCNODE"] = null },
            Name = $"dotnet {verb}",
        });
        var exitCode = await dotnet.WaitForExitAsync(s_buildTimeout);
        Assert.True(exitCode == 0, $"dotnet {verb} failed ({exitCode}):\n{dotnet.Output}");
    }

    [GeneratedRegex(@"^Kestrel\.ReusePort\.(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.nupkg$")]
    private static partial Regex VersionPattern();

    [GeneratedRegex(@"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")]
    private static partial Regex LinkPattern();
}
