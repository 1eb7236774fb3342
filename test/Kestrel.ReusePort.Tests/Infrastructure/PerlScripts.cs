namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Small Perl programs that play a process of another user (or of the same one) at the rendezvous: Perl is on every
/// Debian machine, and as nobody it needs nothing from the repository.
/// </summary>
public static class PerlScripts
{
    /// <summary>
    /// Connects to the rendezvous socket <c>$ARGV[0]</c> (a path, or <c>@name</c> for an abstract one), asks for the
    /// sockets like a starting instance, and says how many bytes came back (it closes after the 8-byte reply).
    /// </summary>
    public const string HandoffClient = """
        use strict; use Socket; $| = 1;
        my $target = $ARGV[0]; $target =~ s/^@/\0/;
        socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
        if (!connect($s, pack_sockaddr_un($target))) { print "connect: $!\n"; exit 0; }
        print "connected uid=$>\n";
        defined(syswrite($s, "KRP2\x01\x00\x00\x00")) or die "write: $!";
        my $total = 0;
        while ($total < 8) { my $n = sysread($s, my $buf, 8 - $total); if (!defined $n) { print "error=$!\n"; last; } last if $n == 0; $total += $n; }
        print "read=$total\n";
        """;

    /// <summary>
    /// Listens on every abstract name (<c>@...</c>) and socket path given, accepts every connection and answers
    /// nothing, holding each one open: the worst a squatter can do. Prints <c>squatting</c> once all are bound.
    /// </summary>
    public const string Squatter = """
        use strict; use Socket; use IO::Select; $| = 1;
        my $select = IO::Select->new();
        for my $name (@ARGV) {
            my $address = $name; $address =~ s/^@/\0/;
            socket(my $l, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
            bind($l, pack_sockaddr_un($address)) or die "bind $name: $!";
            listen($l, 128) or die "listen: $!";
            $select->add($l);
        }
        print "squatting\n";
        my @held;
        while (my @ready = $select->can_read()) { for my $l (@ready) { my $c; push @held, $c if accept($c, $l); } }
        """;

    /// <summary>
    /// benchmark/load/squatter.pl: takes every place another user can write that an instance of the endpoint might
    /// look at, abstract names and file system alike; prints the paths it made, then <c>squatting</c>.
    /// </summary>
    public static string SquatterFile => Path.Join(RepoPaths.Root, "benchmark", "load", "squatter.pl");

    public static ChildProcess Run(string script, IReadOnlyList<string> arguments, bool runAsNobody) => Start(["-e", script, .. arguments], runAsNobody);

    /// <summary>Runs a Perl program from a file, handed over as text: nobody may not be able to read the repository.</summary>
    public static ChildProcess RunFile(string path, IReadOnlyList<string> arguments, bool runAsNobody) => Run(File.ReadAllText(path), arguments, runAsNobody);

    private static ChildProcess Start(IReadOnlyList<string> arguments, bool runAsNobody) => ChildProcess.Start(new ChildProcessStartInfo
    {
        FileName = "/usr/bin/perl",
        Arguments = arguments,
        WorkingDirectory = Path.GetTempPath(),
        RunAsNobody = runAsNobody,
        Name = runAsNobody ? "perl as nobody" : "perl as root",
    });
}
