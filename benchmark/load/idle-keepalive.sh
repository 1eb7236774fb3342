#!/usr/bin/env bash
# Idle keep-alive connections across a deploy: N clients each send one request to the running instance (keep-alive)
# and then stay idle, as a client's connection pool does. A new instance starts on the same port and takes the sockets
# over; the old one gets SIGTERM. Counts how many of the idle connections the server closes within --watch seconds
# after SIGTERM (each such close races with a request the client may be sending), and when; then the clients leave.
#
# Usage: benchmark/load/idle-keepalive.sh [options]
#   --connections N     idle keep-alive connections (default 50)
#   --watch S           seconds after SIGTERM to watch them (default 25)
#   --app-args "ARGS"   extra arguments for both instances, e.g. "--ReusePort:DrainTimeout=00:00:05" (the first
#                       release's drain: every idle connection closed 5 s after SIGTERM)
#   --no-build          use the existing Release build
# Exits 1 if the server closed any idle connection within the watch, 2 on a setup failure.
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CONNECTIONS=50
WATCH=25
APP_ARGS=""
BUILD=1
while (($#)); do
    case "$1" in
        --connections) CONNECTIONS=$2; shift 2 ;;
        --watch) WATCH=$2; shift 2 ;;
        --app-args) APP_ARGS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ && "$WATCH" =~ ^[1-9][0-9]*$ ]] || die "--connections and --watch must be positive integers"
require dotnet perl curl
read -r -a EXTRA_ARGS <<<"$APP_ARGS"
WORK_DIR=$(mktemp -d /tmp/kestrel-reuseport-idle.XXXXXX)
trap cleanup_children EXIT
trap 'exit 130' INT TERM
((BUILD)) && build_apps

PORT=$(free_port)
start() {   # start NAME: an instance of the Release sample on $PORT; waits for its "Application started"
    dotnet "$REUSEPORT_DLL" --contentRoot "${REUSEPORT_DLL%/*}" --urls "http://127.0.0.1:$PORT" "${EXTRA_ARGS[@]}" >"$WORK_DIR/$1.log" 2>&1 &
    STARTED_PID=$!
    track_child "$STARTED_PID"
    local deadline=$((SECONDS + 30))
    until grep -q 'Application started' "$WORK_DIR/$1.log"; do
        ((SECONDS < deadline)) && running "$STARTED_PID" || { cat "$WORK_DIR/$1.log" >&2; die "$1 did not start"; }
        sleep 0.05
    done
}

start old
OLD=$STARTED_PID

# The clients: one request each on its own connection, then idle; prints "ready", then "closed <i> <epoch>" for every
# connection the server closes, until it is killed (which closes them all).
perl -MIO::Socket::INET -MIO::Select -MTime::HiRes=time -e '
    my ($port, $n) = @ARGV; $| = 1;
    my (@sockets, %index);
    for my $i (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, Proto => "tcp") or die "connect: $!";
        print $s "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        my $head = ""; while ($head !~ /\r\n\r\n/) { sysread($s, $head, 1, length $head) or die "no response on $i"; }
        my ($length) = $head =~ /Content-Length: *(\d+)/i; my $body = ""; sysread($s, $body, $length - length $body, length $body) while length $body < $length;
        push @sockets, $s; $index{fileno $s} = $i;
    }
    print "ready\n";
    my $select = IO::Select->new(@sockets);
    while (my @ready = $select->can_read()) {
        for my $s (@ready) {
            my $n = sysread($s, my $buffer, 4096);
            if (!$n) { printf "closed %d %.3f\n", $index{fileno $s}, time; $select->remove($s); }
        }
    }' "$PORT" "$CONNECTIONS" >"$WORK_DIR/clients.out" 2>&1 &
CLIENTS=$!
track_child "$CLIENTS"
until grep -q '^ready' "$WORK_DIR/clients.out"; do running "$CLIENTS" || { cat "$WORK_DIR/clients.out" >&2; die "the clients failed"; }; sleep 0.05; done
on_old=$(ss -Htn state established "( sport = :$PORT )" 2>/dev/null | wc -l)
log "$CONNECTIONS idle keep-alive connections on the old instance (pid $OLD; $on_old established on the port)"

start new
log "new instance (pid $STARTED_PID): $(grep -o 'Listening on .*' "$WORK_DIR/new.log")"
SIGTERM_AT=$EPOCHREALTIME
kill -TERM "$OLD"
sleep "$WATCH"
closed=$(awk -v t="$SIGTERM_AT" -v w="$WATCH" '$1 == "closed" && $3 - t <= w' "$WORK_DIR/clients.out" | wc -l)
times=$(awk -v t="$SIGTERM_AT" '$1 == "closed" { printf "%.1f\n", $3 - t }' "$WORK_DIR/clients.out" | sort -n | uniq -c | awk '{ printf "%s%d at %s s", (NR > 1 ? ", " : ""), $1, $2 }')
running "$OLD" && old_state="still running (draining, without listening sockets)" || old_state="gone"
stop_process "$CLIENTS" 5

# The clients leave: the old instance's drain ends, and it exits.
deadline=$((SECONDS + 40))
while running "$OLD" && ((SECONDS < deadline)); do sleep 0.05; done
echo
echo "Idle keep-alive connections closed by the server within ${WATCH} s after SIGTERM: $closed of $CONNECTIONS${times:+ ($times after SIGTERM)}."
echo "The old instance (pid $OLD) was $old_state ${WATCH} s after SIGTERM."
echo "Its drain, once the clients left: $(grep -ho 'Drain \(ended\|reached\)[^.]*' "$WORK_DIR/old.log" | head -1 || echo "no drain line (see the log)")."
((closed == 0))
