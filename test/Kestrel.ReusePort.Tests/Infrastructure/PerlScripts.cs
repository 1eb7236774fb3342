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
    /// Squats the file system places every user can write to, as <c>$ARGV[0]</c> (an endpoint such as
    /// <c>127.0.0.1:5000</c>) would be named there: directories, socket files that accept and never answer, and
    /// symbolic links to the real rendezvous directory <c>$ARGV[1]</c>, under /tmp, /var/tmp and /dev/shm. Prints each
    /// path it made, then <c>squatting</c>.
    /// </summary>
    public const string FileSquatter = """
        use strict; use Socket; use IO::Select; $| = 1;
        my ($endpoint, $real) = @ARGV;
        my $select = IO::Select->new();
        for my $base ("/tmp", "/var/tmp", "/dev/shm") {
            next unless -d $base;
            for my $dir ("$base/kestrel-reuseport", "$base/kestrel-reuseport-0", "$base/kestrel-reuseport-$>") {
                mkdir $dir, 0777; chmod 0777, $dir;
                next unless -d $dir && -O $dir;
                print "$dir\n";
                socket(my $l, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
                if (bind($l, pack_sockaddr_un("$dir/$endpoint.sock"))) { listen($l, 128); $select->add($l); print "$dir/$endpoint.sock\n"; }
                open(my $lock, ">", "$dir/$endpoint.lock") and print "$dir/$endpoint.lock\n";
            }
            my $link = "$base/kestrel-reuseport-link";
            print "$link\n" if symlink($real, $link);
        }
        print "squatting\n";
        my @held;
        while (my @ready = $select->can_read()) { for my $l (@ready) { my $c; push @held, $c if accept($c, $l); } }
        """;

    public static ChildProcess Run(string script, IReadOnlyList<string> arguments, bool runAsNobody) => ChildProcess.Start(new ChildProcessStartInfo
    {
        FileName = "/usr/bin/perl",
        Arguments = ["-e", script, .. arguments],
        WorkingDirectory = Path.GetTempPath(),
        RunAsNobody = runAsNobody,
        Name = runAsNobody ? "perl as nobody" : "perl as root",
    });
}
