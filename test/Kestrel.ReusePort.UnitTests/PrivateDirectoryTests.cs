using System.Runtime.InteropServices;
using Kestrel.ReusePort.Internal.Posix;

namespace Kestrel.ReusePort.UnitTests;

/// <summary>
/// The rendezvous directory's checks, on real directories under a fresh temporary root. Ownership by another user
/// needs root to set up (chown); those cases are skipped otherwise.
/// </summary>
public sealed partial class PrivateDirectoryTests : IDisposable
{
    private const uint Nobody = 65534;
    private readonly string _root;

    public PrivateDirectoryTests()
    {
        // /tmp is sticky and world-writable: allowed on the way, as it is for real deploys.
        _root = Directory.CreateTempSubdirectory("krp-unit-").FullName;
        File.SetUnixFileMode(_root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static bool IsRoot => NativeMethods.GetEffectiveUserId() == 0;

    [Fact]
    public void APrivateDirectoryIsCreatedWithMode0700AndUsedThroughItsDescriptor()
    {
        var path = Path.Join(_root, "rendezvous");

        using var directory = PrivateDirectory.TryOpen(path, create: true, out var problem);

        Assert.Null(problem);
        Assert.NotNull(directory);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(path));
        File.WriteAllText(directory.PathOf("probe"), "x");
        Assert.True(File.Exists(Path.Join(path, "probe")));
        Assert.True(directory.IsStillAtPath());
    }

    [Fact]
    public void AMissingDirectoryIsNotCreatedUnlessAsked()
    {
        Assert.Null(PrivateDirectory.TryOpen(Path.Join(_root, "missing"), create: false, out var problem));
        Assert.NotNull(problem);
        Assert.False(Directory.Exists(Path.Join(_root, "missing")));
    }

    [Fact]
    public void ARelativePathOrTheRootIsRefused()
    {
        Assert.Null(PrivateDirectory.TryOpen("relative/dir", create: true, out var relative));
        Assert.NotNull(relative);
        Assert.Null(PrivateDirectory.TryOpen("/", create: false, out var root));
        Assert.NotNull(root);
    }

    [Fact]
    public void AFinalDirectoryOthersCanWriteToIsRefused()
    {
        var path = Directory.CreateDirectory(Path.Join(_root, "open")).FullName;
        File.SetUnixFileMode(path, (UnixFileMode)0b111_111_111);

        Assert.Null(PrivateDirectory.TryOpen(path, create: false, out var problem));
        Assert.Contains(path, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void AParentOthersCanWriteToWithoutTheStickyBitIsRefused()
    {
        var parent = Directory.CreateDirectory(Path.Join(_root, "parent")).FullName;
        File.SetUnixFileMode(parent, (UnixFileMode)0b111_111_111);
        var path = Directory.CreateDirectory(Path.Join(parent, "child")).FullName;
        File.SetUnixFileMode(path, (UnixFileMode)0b111_000_000);

        Assert.Null(PrivateDirectory.TryOpen(path, create: false, out var problem));
        Assert.Contains(parent, problem, StringComparison.Ordinal);

        // The same parent with the sticky bit, like /tmp, is fine on the way.
        File.SetUnixFileMode(parent, (UnixFileMode)0b1_111_111_111);
        using var directory = PrivateDirectory.TryOpen(path, create: false, out problem);
        Assert.Null(problem);
    }

    [Fact]
    public void AFileIsNoDirectory()
    {
        var path = Path.Join(_root, "file");
        File.WriteAllText(path, string.Empty);

        Assert.Null(PrivateDirectory.TryOpen(path, create: false, out var problem));
        Assert.NotNull(problem);
    }

    [Fact]
    public void ALinkOfThisUserIsFollowedAndTheDirectoryMovedAwayIsNoticed()
    {
        var target = Directory.CreateDirectory(Path.Join(_root, "target")).FullName;
        File.SetUnixFileMode(target, (UnixFileMode)0b111_000_000);
        var link = Path.Join(_root, "link");
        File.CreateSymbolicLink(link, target);

        using var directory = PrivateDirectory.TryOpen(link, create: false, out var problem);
        Assert.Null(problem);
        Assert.NotNull(directory);
        Assert.True(directory.IsStillAtPath());

        Directory.Move(target, Path.Join(_root, "moved"));
        Assert.False(directory.IsStillAtPath());
    }

    [Fact]
    public void ADirectoryOfAnotherUserIsRefused()
    {
        if (!IsRoot)
        {
            return;
        }

        var path = Directory.CreateDirectory(Path.Join(_root, "theirs")).FullName;
        File.SetUnixFileMode(path, (UnixFileMode)0b111_000_000);
        Assert.Equal(0, LChown(path, Nobody, Nobody));

        Assert.Null(PrivateDirectory.TryOpen(path, create: false, out var problem));
        Assert.Contains(path, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ALinkPlantedByAnotherUserInAStickyDirectoryIsRefused()
    {
        if (!IsRoot)
        {
            return;
        }

        var sticky = Directory.CreateDirectory(Path.Join(_root, "sticky")).FullName;
        File.SetUnixFileMode(sticky, (UnixFileMode)0b1_111_111_111);
        var target = Directory.CreateDirectory(Path.Join(_root, "mine")).FullName;
        File.SetUnixFileMode(target, (UnixFileMode)0b111_000_000);
        var link = Path.Join(sticky, "planted");
        File.CreateSymbolicLink(link, target);
        Assert.Equal(0, LChown(link, Nobody, Nobody));

        Assert.Null(PrivateDirectory.TryOpen(link, create: false, out var problem));
        Assert.Contains(link, problem, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LChown(string path, uint owner, uint group);
}
