namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// A fact that needs root, to start processes as user nobody with <c>setpriv</c>; skipped with the reason otherwise
/// (xunit 2 has no skip decided inside a running test).
/// </summary>
public sealed class RootFactAttribute : FactAttribute
{
    private string? _skip;

    /// <summary>Also needs /usr/bin/perl, run as nobody as a foreign client or squatter of a Unix socket.</summary>
    public bool RequiresPerl { get; set; }

    public override string Skip
    {
        get => _skip ?? MissingRequirement(RequiresPerl)!;
        set => _skip = value;
    }

    /// <summary>Why a test that needs root (and perhaps Perl) cannot run here, or null.</summary>
    internal static string? MissingRequirement(bool requiresPerl)
    {
        if (!OperatingSystem.IsLinux())
        {
            return "Needs Linux.";
        }

        if (LibC.GetEffectiveUserId() != 0)
        {
            return "Needs root, to start a process as another user (user nobody); this test process runs as user id " +
                LibC.GetEffectiveUserId() + ".";
        }

        if (!File.Exists("/usr/bin/setpriv") && !File.Exists("/bin/setpriv"))
        {
            return "Needs setpriv (util-linux) to start a process as user nobody.";
        }

        if (requiresPerl && !File.Exists("/usr/bin/perl"))
        {
            return "Needs /usr/bin/perl to act as a process of user nobody on a Unix socket.";
        }

        return null;
    }
}
