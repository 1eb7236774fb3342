using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// The rendezvous directory must be private to the service's user, on a path no other user can change. A configured
/// one that is not fails the start with the path and what is wrong with it; one from the environment that is not is
/// logged as an error and turns the handoff off. Neither is ever replaced by another place.
/// </summary>
public sealed class RendezvousDirectoryTests : IDisposable
{
    private const uint Nobody = 65534;
    private readonly string _scratch = Directory.CreateTempSubdirectory("kestrel-reuseport-dirtest-").FullName;

    [Fact]
    public async Task AConfiguredDirectoryIsCreatedPrivateHoldsTheRendezvousAndIsLeftEmpty()
    {
        var directory = Path.Join(_scratch, "rendezvous");
        var port = PortAllocator.GetFreePort();
        await using var server = await StartAsync(directory, port);
        await Eventually.UntilAsync(() => server.Logs.ReusePortEvents(10).Count > 0, TimeSpan.FromSeconds(10), "the offer");
        Assert.Equal($"{directory}/127.0.0.1:{port}.sock", Assert.Single(server.Logs.ReusePortEvents(10)).State("Place"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
        Assert.True(File.Exists(Path.Join(directory, $"127.0.0.1:{port}.sock")));

        await server.StopAsync();
        Assert.Empty(Directory.GetFileSystemEntries(directory));
    }

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute, "0703")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute, "0730")]
    public async Task AConfiguredDirectoryOthersCanWriteToIsRefused(UnixFileMode mode, string octal)
    {
        var directory = Path.Join(_scratch, "shared");
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, mode);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(directory, PortAllocator.GetFreePort()));
        Assert.Contains($"RendezvousDirectory '{directory}' cannot hold the socket handoff's rendezvous", error.Message, StringComparison.Ordinal);
        Assert.Contains($"is writable by its group or by others (mode {octal})", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AConfiguredDirectoryBelowOneAnyoneCanReplaceIsRefused()
    {
        // Writable by all, without the sticky bit of /tmp: anyone could rename the directory away and put their own.
        var open = Path.Join(_scratch, "open");
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0b111_111_111);
        var directory = Path.Join(open, "rendezvous");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(directory, PortAllocator.GetFreePort()));
        Assert.Contains($"'{open}' on its path is writable by its group or by others without the sticky bit (mode 0777)", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(directory), "nothing is created below a refused directory");
    }

    [RootFact]
    public async Task AConfiguredDirectoryOfAnotherUserIsRefused()
    {
        var directory = Path.Join(_scratch, "theirs");
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.Equal(0, LibC.LChown(directory, Nobody, Nobody));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(directory, PortAllocator.GetFreePort()));
        Assert.Contains($"'{directory}' belongs to user id {Nobody}, not to this process's user id 0", error.Message, StringComparison.Ordinal);
    }

    [RootFact]
    public async Task ADirectoryReachedThroughAnotherUsersLinkIsRefusedAndThroughRootsIsUsed()
    {
        var target = Path.Join(_scratch, "real");
        Directory.CreateDirectory(target);
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        // Planted in /tmp, where anyone can put a link: one of user nobody's is not followed.
        var planted = Path.Join("/tmp", $"kestrel-reuseport-link-{Guid.NewGuid():N}");
        File.CreateSymbolicLink(planted, target);
        try
        {
            Assert.Equal(0, LibC.LChown(planted, Nobody, Nobody));
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(planted, PortAllocator.GetFreePort()));
            Assert.Contains($"it is reached through the symbolic link '{planted}', which belongs to user id {Nobody}", error.Message, StringComparison.Ordinal);

            // The same link made by root is root's word: followed, and the rendezvous lives in the real directory.
            Assert.Equal(0, LibC.LChown(planted, 0, 0));
            var port = PortAllocator.GetFreePort();
            await using var server = await StartAsync(planted, port);
            await Eventually.UntilAsync(() => File.Exists(Path.Join(target, $"127.0.0.1:{port}.sock")), TimeSpan.FromSeconds(10), "the socket file in the real directory");
        }
        finally
        {
            File.Delete(planted);
        }
    }

    [RootFact]
    public async Task AnEnvironmentDirectoryThatIsNotPrivateTurnsTheHandoffOffWithAnError()
    {
        // $RUNTIME_DIRECTORY names a directory anyone may write to: the app serves, says why it cannot hand over, and
        // does not fall back to another place.
        var open = Path.Join(_scratch, "runtime");
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0b111_111_111);
        var port = PortAllocator.GetFreePort();
        using var app = SampleProcess.Start($"http://127.0.0.1:{port}", ["--ReusePort:ListenerCount=2"],
            new Dictionary<string, string?> { ["RUNTIME_DIRECTORY"] = open });
        await app.WaitUntilServingAsync(new IPEndPoint(IPAddress.Loopback, port));

        var refused = Assert.Single(app.Events(27));
        Assert.Equal(($"{open}/kestrel-reuseport", "$RUNTIME_DIRECTORY"), (refused["Path"], refused["Source"]));
        Assert.False(app.HasEvent(10), app.Output);
        Assert.Empty(Directory.GetFileSystemEntries(open));
    }

    public void Dispose()
    {
        // Give the scratch directories back to root so that they can be removed whatever the test did to them.
        foreach (var entry in Directory.GetFileSystemEntries(_scratch, "*", SearchOption.AllDirectories))
        {
            LibC.LChown(entry, 0, 0);
        }

        Directory.Delete(_scratch, recursive: true);
    }

    private static Task<InProcessServer> StartAsync(string directory, int port) => InProcessServer.StartAsync(new InProcessServerOptions
    {
        Urls = [$"http://127.0.0.1:{port}"],
        ConfigureReusePort = o =>
        {
            o.ListenerCount = 1;
            o.RendezvousDirectory = directory;
        },
    });
}
