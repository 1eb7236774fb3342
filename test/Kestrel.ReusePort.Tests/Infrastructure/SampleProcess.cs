using System.Net;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// The sample app (sample/WebApp, the one-line <c>UseReusePortSockets()</c> app) running as a child process:
/// <c>dotnet WebApp.dll --urls URLS [arguments]</c>, logging Kestrel.ReusePort and the host lifetime at Information
/// level, one JSON object per line (<see cref="LoggedEvent"/>). <c>GET /</c> answers <c>Hello from pid N</c>, <c>GET /healthz</c> answers <c>ok</c>, and
/// <c>--ReusePort:Option=value</c> arguments set <see cref="ReusePortSocketTransportOptions"/>.
/// </summary>
public sealed class SampleProcess : ChildProcess
{
    /// <summary>The category of the host's lifetime messages, and of Kestrel's "Now listening on".</summary>
    public const string HostCategory = "Microsoft.Hosting.Lifetime";

    /// <summary>Kestrel's event id for "Now listening on: {address}", once it has bound an address.</summary>
    public const int NowListeningEventId = 14;

    /// <summary>A generous limit for a child process to start on a busy 2-core machine.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private static readonly string[] s_loggingArguments =
    [
        "--Logging:LogLevel:Default=Warning",
        "--Logging:LogLevel:Kestrel.ReusePort=Information",
        "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
        // One JSON object per line: tests read event ids and structured state (LoggedEvent), never the wording.
        "--Logging:Console:FormatterName=json",
        "--Logging:Console:FormatterOptions:IncludeScopes=false",
    ];

    private static readonly TimeSpan s_graceOnDispose = TimeSpan.FromSeconds(5);

    private readonly string? _copy;

    private SampleProcess(ChildProcessStartInfo startInfo, string? copy)
        : base(startInfo)
    {
        _copy = copy;
    }

    /// <summary>
    /// Starts the sample on <paramref name="urls"/>.
    /// </summary>
    /// <param name="urls">The <c>--urls</c> value, e.g. <c>http://127.0.0.1:5000</c>.</param>
    /// <param name="arguments">More arguments, e.g. <c>--ReusePort:SocketHandoff=false</c>.</param>
    /// <param name="environment">Environment variables to set (null removes one).</param>
    /// <param name="runAsNobody">
    /// Run as user nobody (needs root). The sample's bin folder is copied to a fresh world-readable temporary directory
    /// first, since nobody may not be able to reach the repository.
    /// </param>
    /// <param name="fileDescriptorLimit">If set, the process's descriptor limit (<c>ulimit -n</c>).</param>
    /// <param name="name">A name for messages.</param>
    /// <param name="runAsUserId">Run as this numeric user id (needs root), from a world-readable copy like <paramref name="runAsNobody"/>.</param>
    /// <param name="wrapper">A command to run the app under, e.g. <c>unshare --pid --fork --mount-proc</c>.</param>
    /// <param name="assembly">Another app to start in the same way instead of the sample, e.g. <see cref="RepoPaths.TestAppAssembly"/>.</param>
    /// <param name="nativeExecutable">
    /// The sample published with NativeAOT (<see cref="NativeAotSample.PublishAsync"/>): run that executable instead of
    /// <c>dotnet WebApp.dll</c>, with the same arguments.
    /// </param>
    public static SampleProcess Start(
        string urls,
        IEnumerable<string>? arguments = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        bool runAsNobody = false,
        int? fileDescriptorLimit = null,
        string? name = null,
        int? runAsUserId = null,
        IReadOnlyList<string>? wrapper = null,
        string? assembly = null,
        string? nativeExecutable = null)
    {
        var otherUser = runAsNobody || runAsUserId is not null;
        if (nativeExecutable is not null && otherUser)
        {
            throw new ArgumentException("The NativeAOT sample runs as this user only.", nameof(nativeExecutable));
        }

        var directory = nativeExecutable is not null ? Path.GetDirectoryName(nativeExecutable)!
            : assembly is not null ? Path.GetDirectoryName(assembly)! : RepoPaths.SampleDirectory;
        assembly = nativeExecutable ?? assembly ?? RepoPaths.SampleAssembly;
        string? copy = null;
        if (otherUser)
        {
            copy = CopyWorldReadable(directory);
            directory = copy;
            assembly = Path.Combine(copy, Path.GetFileName(assembly));
        }

        var env = new Dictionary<string, string?>
        {
            // Whatever the test host's environment says, the app listens where --urls says, and nowhere else.
            ["ASPNETCORE_URLS"] = null,
            ["DOTNET_URLS"] = null,
            ["ASPNETCORE_HTTP_PORTS"] = null,
            ["ASPNETCORE_HTTPS_PORTS"] = null,
        };
        if (otherUser)
        {
            env["HOME"] = directory;
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            env[key] = value;
        }

        try
        {
            return new SampleProcess(
                new ChildProcessStartInfo
                {
                    FileName = nativeExecutable ?? RepoPaths.DotnetHost,
                    Arguments = nativeExecutable is null
                        ? [assembly, "--urls", urls, .. s_loggingArguments, .. arguments ?? []]
                        : ["--urls", urls, .. s_loggingArguments, .. arguments ?? []],
                    WorkingDirectory = directory,
                    Environment = env,
                    RunAsNobody = runAsNobody,
                    RunAsUserId = runAsUserId,
                    Wrapper = wrapper ?? [],
                    FileDescriptorLimit = fileDescriptorLimit,
                    Name = name ?? (nativeExecutable is not null ? "WebApp (NativeAOT)" : runAsNobody ? "WebApp as nobody" : runAsUserId is { } uid ? $"WebApp as user id {uid}" : "WebApp"),
                },
                copy);
        }
        catch
        {
            DeleteCopy(copy);
            throw;
        }
    }

    /// <summary>
    /// Starts the sample on 127.0.0.1:<paramref name="port"/> and waits until it serves and offers its sockets at the
    /// rendezvous: a running instance to deploy onto. It is disposed if that fails.
    /// </summary>
    public static async Task<SampleProcess> StartRunningAsync(
        int port, IEnumerable<string> arguments, string name, IReadOnlyDictionary<string, string?>? environment = null, string? nativeExecutable = null)
    {
        var instance = Start($"http://127.0.0.1:{port}", arguments, environment, name: name, nativeExecutable: nativeExecutable);
        try
        {
            await instance.WaitUntilServingAsync(new IPEndPoint(IPAddress.Loopback, port));
            await Rendezvous.WaitUntilOfferedAsync(instance, $"127.0.0.1:{port}");
            return instance;
        }
        catch
        {
            instance.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The host's own lifetime messages (event id 0) whose template starts with <paramref name="template"/>, e.g.
    /// "Application started": the host gives them no event id, so their template is what identifies them.
    /// </summary>
    public IReadOnlyList<LoggedEvent> HostMessages(string template) =>
        [.. Events(0, HostCategory).Where(e => e.State.GetValueOrDefault("{OriginalFormat}")?.StartsWith(template, StringComparison.Ordinal) == true)];

    /// <summary>
    /// Waits for the host's "Application started." message: ApplicationStarted has fired. The host gives it no event id
    /// (0), so its template identifies it: in a JSON line, or in the line of another formatter (an app with
    /// <c>UseSystemd()</c> logs in systemd's format).
    /// </summary>
    public Task WaitUntilStartedAsync(TimeSpan? timeout = null) =>
        WaitForOutputAsync(
            line => LoggedEvent.TryParse(line) is { } e
                ? e is { EventId: 0, Category: HostCategory } && e.State.GetValueOrDefault("{OriginalFormat}")?.StartsWith("Application started", StringComparison.Ordinal) == true
                : IsEvent(line, 0, HostCategory) && line.Contains("Application started", StringComparison.Ordinal),
            timeout ?? StartTimeout,
            "'Application started.'");

    /// <summary>
    /// Waits until the app has started and <paramref name="endPoint"/> answers <c>GET /healthz</c> with 200 <c>ok</c>
    /// (from this process or, on a shared port, from another).
    /// </summary>
    public async Task WaitUntilServingAsync(EndPoint endPoint, TimeSpan? timeout = null)
    {
        var limit = timeout ?? StartTimeout;
        var deadline = DateTime.UtcNow + limit;
        await WaitUntilStartedAsync(limit);
        await Eventually.UntilAsync(
            async () =>
            {
                if (HasExited)
                {
                    throw new InvalidOperationException($"{this} exited with code {ExitCode}.\n{Output}");
                }

                var response = await RawHttpClient.GetAsync(endPoint, "/healthz", TimeSpan.FromSeconds(5));
                return response.StatusCode == 200 && response.Body.Trim() == "ok";
            },
            deadline - DateTime.UtcNow > TimeSpan.FromSeconds(1) ? deadline - DateTime.UtcNow : TimeSpan.FromSeconds(1),
            $"{endPoint} to answer GET /healthz ({this})");
    }

    protected override void Dispose(bool disposing)
    {
        // A clean stop removes the instance's rendezvous files; SIGKILL (the base's last resort) would leave them stale.
        if (disposing && !HasExited)
        {
            try
            {
                Signal(LibC.SigTerm);
                WaitForExitAsync(s_graceOnDispose).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
            }
        }

        base.Dispose(disposing);
        if (disposing)
        {
            DeleteCopy(_copy);
        }
    }

    private static string CopyWorldReadable(string source)
    {
        var target = Directory.CreateTempSubdirectory("kestrel-reuseport-sample-").FullName;
        const UnixFileMode directoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        const UnixFileMode fileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(target, directoryMode);
        foreach (var directory in Directory.GetDirectories(source, "*", SearchOption.AllDirectories))
        {
            var created = Directory.CreateDirectory(Path.Combine(target, Path.GetRelativePath(source, directory)));
            File.SetUnixFileMode(created.FullName, directoryMode);
        }

        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var copied = Path.Combine(target, Path.GetRelativePath(source, file));
            File.Copy(file, copied);
            File.SetUnixFileMode(copied, fileMode);
        }

        return target;
    }

    private static void DeleteCopy(string? copy)
    {
        if (copy is null)
        {
            return;
        }

        try
        {
            Directory.Delete(copy, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
