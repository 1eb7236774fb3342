using Kestrel.ReusePort.Internal.Rendezvous;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Where the instances started by these tests meet for the socket handoff, as the library decides it from this test
/// process's environment (children inherit it): a <c>kestrel-reuseport</c> directory in $RUNTIME_DIRECTORY,
/// $XDG_RUNTIME_DIR or /run (root); otherwise random abstract names found through /proc, with no directory.
/// </summary>
public static class Rendezvous
{
    /// <summary>The default rendezvous directory, or null where instances find each other through /proc.</summary>
    public static string? DefaultDirectory =>
        RendezvousLocation.EnvironmentDirectory(Environment.GetEnvironmentVariable).Directory is { } directory
            ? Path.Join(directory, RendezvousLocation.SubdirectoryName)
            : null;

    /// <summary>The socket file of an endpoint (e.g. <c>127.0.0.1:5000</c>) in a rendezvous directory.</summary>
    public static string SocketFile(string directory, string endpoint) => Path.Join(directory, endpoint + ".sock");

    /// <summary>The lock file of an endpoint in a rendezvous directory.</summary>
    public static string LockFile(string directory, string endpoint) => Path.Join(directory, endpoint + ".lock");

    /// <summary>The event an instance logs when it starts to offer its sockets of <paramref name="endpoint"/> to the next one.</summary>
    public static bool IsOfferLine(string line, string endpoint) =>
        ChildProcess.IsEvent(line, 10) && line.Contains($" {endpoint} ", StringComparison.Ordinal);

    /// <summary>Waits until <paramref name="process"/> offers its sockets of <paramref name="endpoint"/> at the rendezvous.</summary>
    public static Task WaitUntilOfferedAsync(ChildProcess process, string endpoint, TimeSpan? timeout = null) =>
        process.WaitForOutputAsync(line => IsOfferLine(line, endpoint), timeout ?? TimeSpan.FromSeconds(15), $"the rendezvous offer of {endpoint}");
}
