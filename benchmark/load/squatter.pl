#!/usr/bin/perl
# Plays a process of another user that tries to disturb the socket handoff of ENDPOINT (e.g. 127.0.0.1:5000): run it as
# that user (e.g. setpriv --reuid=nobody --regid=nogroup --clear-groups perl squatter.pl ENDPOINT RENDEZVOUS_DIR).
# It takes every place an unprivileged user can write that an instance might look at:
# - the abstract names of the endpoint: the first release's, the opt-in fixed one, and one shaped like a discovered one;
# - kestrel-reuseport directories in /tmp, /var/tmp and /dev/shm, with socket files named after the endpoint and
#   lock files beside them, and symbolic links there pointing at the real rendezvous directory RENDEZVOUS_DIR.
# Every socket accepts connections and answers nothing, holding them open: the worst it can do. It prints each path it
# made, then "squatting", and runs until killed; the paths it made are left for the caller to remove.
use strict; use warnings; use Socket; use IO::Select;
$| = 1;
my ($endpoint, $real) = @ARGV;
die "usage: $0 ENDPOINT RENDEZVOUS_DIR\n" unless $endpoint && $real;
my $select = IO::Select->new();

sub squat {
    my ($name) = @_;
    my $address = $name; $address =~ s/^@/\0/;
    socket(my $l, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
    bind($l, pack_sockaddr_un($address)) or return 0;
    listen($l, 128) or die "listen: $!";
    $select->add($l);
    return 1;
}

for my $name ("\@kestrel-reuseport/v1/uid-0/$endpoint", "\@kestrel-reuseport/v2/uid-0/$endpoint",
              "\@kestrel-reuseport/v2/$endpoint/00112233445566778899aabbccddeeff") {
    squat($name) or warn "could not bind $name: $!\n";
}

for my $base ("/tmp", "/var/tmp", "/dev/shm") {
    next unless -d $base;
    for my $dir ("$base/kestrel-reuseport", "$base/kestrel-reuseport-0", "$base/kestrel-reuseport-$>") {
        mkdir $dir, 0777; chmod 0777, $dir;
        next unless -d $dir && -O $dir;
        print "$dir\n";
        print "$dir/$endpoint.sock\n" if squat("$dir/$endpoint.sock");
        open(my $lock, ">", "$dir/$endpoint.lock") and print "$dir/$endpoint.lock\n";
    }
    my $link = "$base/kestrel-reuseport-link";
    print "$link\n" if symlink($real, $link);
}

print "squatting\n";
my @held;
while (my @ready = $select->can_read()) {
    for my $l (@ready) { my $c; push @held, $c if accept($c, $l); }
}
