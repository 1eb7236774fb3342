#!/usr/bin/env bash
# A rolling deploy of sample/WebApp on one 127.0.0.1 port, with the meter Kestrel.ReusePort read as dotnet-counters
# reads it (CountersSnapshot, over EventPipe) along the way:
#
#   1. instance A starts and serves a few requests; two keep-alive connections to it are opened and left idle (before
#      B exists, so that they are certainly A's: once B holds A's sockets, the kernel gives a new connection to either);
#   2. snapshot "A, handoff" starts: a session on A from before B starts until A has drained for 2.5 s;
#   3. instance B starts suspended (DOTNET_DefaultDiagnosticPortSuspend=1) and snapshot "B" resumes it (--resume, as
#      `dotnet-counters monitor -- <command>` does), so that it sees B take A's sockets over and warm up; B serves a
#      few requests, and snapshot "B" ends;
#   4. A gets SIGTERM and drains: the idle connections keep it draining; snapshot "A, handoff" ends;
#   5. snapshot "A, drain end" (RefreshInterval 0.1 s, the least MetricsEventSource takes) listens until A exits:
#        --drain-end close  (default) the idle connections close, the drain completes, A exits at once;
#        --drain-end bound  A runs with a 6 s drain bound; 1 s before it a /delay/3000 request goes out on one idle
#                           connection, so the drain reaches its bound (the other idle connection is closed there) and
#                           A lives on until that request is answered: its drain's measurements get reported;
#   6. B gets SIGTERM; the snapshots are printed.
#
# Exits 0 when the snapshots show the expected instruments (see the checks at the end), 1 otherwise. Stops everything
# it started, by pid.
#
#   benchmark/CountersSnapshot/deploy-snapshot.sh [--no-build] [--keep] [--drain-end close|bound]
#     --no-build   use the Release builds already there
#     --keep       keep the work folder (logs, snapshots) and say where it is
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
APP_DLL=$ROOT/sample/WebApp/bin/Release/net10.0/WebApp.dll
TOOL_DLL=$ROOT/benchmark/CountersSnapshot/bin/Release/net10.0/CountersSnapshot.dll
BUILD=1
KEEP=0
DRAIN_END=close
while (($#)); do
    case "$1" in
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        --drain-end) DRAIN_END=${2:-}; shift ;;
        -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[[ "$DRAIN_END" == close || "$DRAIN_END" == bound ]] || { echo "--drain-end is close or bound" >&2; exit 2; }

WORK=$(mktemp -d /tmp/counters-snapshot.XXXXXX)
STARTED=()      # every process this script started, stopped by pid at the end
IDLE_OPEN=0

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

close_idle() {
    if ((IDLE_OPEN)); then exec 3>&- 4>&-; IDLE_OPEN=0; fi
}

cleanup() {
    local pid
    close_idle
    for pid in "${STARTED[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if ((KEEP)); then log "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

build() {
    local project=$1 try
    for try in 1 2 3; do
        if dotnet build -c Release --nologo -v q "$ROOT/$project" >"$WORK/build.log" 2>&1; then return 0; fi
        # The sources may be mid-change, or a build of them running: wait and retry.
        log "build of $project failed (try $try): $(grep -m1 -E 'error|Error' "$WORK/build.log" || tail -1 "$WORK/build.log")"
        sleep 60
    done
    cat "$WORK/build.log" >&2
    die "cannot build $project"
}

free_port() {
    local port _
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 12000))   # below the ephemeral range, as load/common.sh
        if [[ -z "$(ss -Htan "( sport = :$port or dport = :$port )" 2>/dev/null)" ]]; then echo "$port"; return 0; fi
    done
    die "no free port"
}

# wait_for FILE PATTERN SECONDS [PID]: until a line of FILE matches, or the time is up, or PID is gone.
wait_for() {
    local file=$1 pattern=$2 seconds=$3 pid=${4:-} i
    for ((i = 0; i < seconds * 10; i++)); do
        grep -q -- "$pattern" "$file" 2>/dev/null && return 0
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then grep -q -- "$pattern" "$file" 2>/dev/null; return; fi
        sleep 0.1
    done
    return 1
}

# Every child gets 3>&- 4>&-: one that kept the idle connections' descriptors would keep them open.

# requests N: N requests, each on a connection of its own (each one an accepted connection).
requests() {
    local i
    for ((i = 0; i < $1; i++)); do
        curl -s -m 5 -H 'Connection: close' "http://127.0.0.1:$PORT/" >>"$WORK/responses.txt" 3>&- 4>&-
    done
}

# snapshot NAME PID [ARGS...]: starts CountersSnapshot in the background and waits until its session listens.
snapshot() {
    local name=$1 pid=$2
    shift 2
    dotnet "$TOOL_DLL" --pid "$pid" "$@" >"$WORK/$name.md" 2>"$WORK/$name.err" 3>&- 4>&- &
    SNAPSHOT_PID=$!
    STARTED+=("$SNAPSHOT_PID")
    wait_for "$WORK/$name.err" 'CountersSnapshot: listening' 20 "$SNAPSHOT_PID" || { cat "$WORK/$name.err" >&2; die "snapshot $name did not start"; }
}

# finish NAME PID [stop]: ends snapshot PID (SIGTERM if "stop", else waits for it) and checks its exit code.
finish() {
    local name=$1 pid=$2 rc=0
    if [[ "${3:-}" == stop ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
    wait "$pid" || rc=$?
    [[ $rc -eq 0 ]] || { cat "$WORK/$name.err" >&2; die "snapshot $name exited $rc"; }
}

# keep_alive FD: one request on connection FD, its answer read; the connection then stays idle on A.
keep_alive() {
    local fd=$1 line=
    printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
    while IFS= read -r -t 5 line <&"$fd"; do [[ "$line" == ok* ]] && return 0; done
    die "idle connection $fd got no answer"
}

# check NAME INSTRUMENT [TEXT...]: some row of snapshot NAME is INSTRUMENT's and holds every TEXT.
FAILURES=()
check() {
    local name=$1 instrument=$2 text rows
    shift 2
    rows=$(grep -F "| $instrument |" "$WORK/$name.md" || true)
    for text in "$@"; do rows=$(grep -F -- "$text" <<<"$rows" || true); done
    [[ -n "$rows" ]] || FAILURES+=("$name: no row of $instrument${*:+ with: $*}")
}

if ((BUILD)); then
    log "building sample/WebApp and benchmark/CountersSnapshot (Release)"
    build sample/WebApp
    build benchmark/CountersSnapshot
fi
[[ -f "$APP_DLL" && -f "$TOOL_DLL" ]] || die "missing $APP_DLL or $TOOL_DLL (run without --no-build)"

PORT=$(free_port)
URLS=http://127.0.0.1:$PORT
# A rendezvous of this run's own: instances of other runs on this machine never meet these.
APP_ARGS=(--urls "$URLS" --ReusePort:RendezvousDirectory="$WORK/rendezvous")
DRAIN_BOUND=
if [[ "$DRAIN_END" == bound ]]; then
    DRAIN_BOUND=6
    APP_ARGS+=(--ReusePort:DrainTimeout=00:00:0$DRAIN_BOUND)
fi

log "1. instance A on $URLS (drain end: $DRAIN_END)"
dotnet "$APP_DLL" "${APP_ARGS[@]}" >"$WORK/a.log" 2>&1 3>&- 4>&- &
A=$!
STARTED+=("$A")
wait_for "$WORK/a.log" 'Application started' 60 "$A" || { cat "$WORK/a.log" >&2; die "A did not start"; }
requests 3
exec 3<>"/dev/tcp/127.0.0.1/$PORT" 4<>"/dev/tcp/127.0.0.1/$PORT"
IDLE_OPEN=1
keep_alive 3
keep_alive 4

log "2. snapshot 'A, handoff' on A (pid $A)"
snapshot a-handoff "$A" --seconds 120
A_HANDOFF=$SNAPSHOT_PID

log "3. instance B, suspended until snapshot 'B' resumes it"
DOTNET_DefaultDiagnosticPortSuspend=1 dotnet "$APP_DLL" "${APP_ARGS[@]}" >"$WORK/b.log" 2>&1 3>&- 4>&- &
B=$!
STARTED+=("$B")
snapshot b "$B" --resume --seconds 120
B_SNAPSHOT=$SNAPSHOT_PID
wait_for "$WORK/b.log" 'Application started' 60 "$B" || { cat "$WORK/b.log" >&2; die "B did not start"; }
requests 6
sleep 2.5   # two more intervals, so that the last requests are reported
finish b "$B_SNAPSHOT" stop

log "4. SIGTERM to A: it drains, two idle connections open"
kill -TERM "$A"
TERM_AT=$(date +%s.%N)
wait_for "$WORK/a.log" 'draining' 10 "$A" || die "A did not begin to drain"
sleep 2.5
finish a-handoff "$A_HANDOFF" stop

log "5. snapshot 'A, drain end' (RefreshInterval 0.1 s) until A exits"
snapshot a-drain "$A" --interval 0.1 --seconds 60
if [[ "$DRAIN_END" == close ]]; then
    sleep 0.5
    log "   closing the idle connections"
    close_idle
else
    # One second before the bound: a request that outlasts it (Kestrel's shutdown lets it finish, up to
    # HostOptions.ShutdownTimeout, 30 s from SIGTERM), on connection 4; connection 3 stays idle and is closed at the bound.
    sleep "$(awk -v t="$TERM_AT" -v now="$(date +%s.%N)" -v b="$DRAIN_BOUND" 'BEGIN { d = t + b - 1 - now; print (d > 0 ? d : 0) }')"
    log "   GET /delay/3000 on an idle connection, 1 s before the drain's bound"
    printf 'GET /delay/3000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&4
fi
A_RC=0
wait "$A" || A_RC=$?
log "A exited ($A_RC)"
finish a-drain "$SNAPSHOT_PID"
close_idle

log "6. SIGTERM to B"
kill -TERM "$B"
wait "$B" || true

for name in b a-handoff a-drain; do
    case $name in
        b) title="B, from its start (DOTNET_DefaultDiagnosticPortSuspend=1, --resume) until it served a few requests" ;;
        a-handoff) title="A, from before B started until 2.5 s into its drain" ;;
        a-drain) title="A, from 2.5 s into its drain until it exited (drain end: $DRAIN_END)" ;;
    esac
    printf '## Snapshot: %s\n\n' "$title"
    cat "$WORK/$name.md"
    echo
done

printf '## The Kestrel.ReusePort lines of the logs\n\n```\n'
grep -h -A1 'Kestrel.ReusePort\[' "$WORK/a.log" | grep -v -- '^--' | sed 's/^/A: /'
grep -h -A1 'Kestrel.ReusePort\[' "$WORK/b.log" | grep -v -- '^--' | sed 's/^/B: /'
printf '```\n\n'

# B: the takeover and the warm-up, its sockets and its accepts, with their attributes.
check b kestrel.reuseport.handoff.duration '| histogram | s |' 'kestrel.reuseport.handoff.result=taken_over' 'server.port='
check b kestrel.reuseport.warmup.duration '| histogram | s |' 'server.address=127.0.0.1' 'network.type=ipv4'
check b kestrel.reuseport.handoff.sockets '| counter | {socket} |' 'kestrel.reuseport.handoff.direction=received'
check b kestrel.reuseport.listening_sockets '| observable up-down counter | {socket} |' 'network.transport=tcp'
check b kestrel.reuseport.accepted_connections '| counter | {connection} |' 'kestrel.reuseport.socket.index='
# A: the sockets it sent, then its drain's instruments; their values only where A outlived its drain (bound).
check a-handoff kestrel.reuseport.handoff.sockets '| counter | {socket} |' 'kestrel.reuseport.handoff.direction=sent'
check a-drain kestrel.reuseport.drain.duration '| histogram | s |'
check a-drain kestrel.reuseport.drain.connections '| counter | {connection} |'
if [[ "$DRAIN_END" == bound ]]; then
    check a-drain kestrel.reuseport.drain.duration 'kestrel.reuseport.drain.result=timed_out'
    check a-drain kestrel.reuseport.drain.connections 'kestrel.reuseport.drain.outcome=closed_idle'
fi

# Seen only if a collection ran between the measurement and the meter's disposal at exit.
SEEN=()
grep -q '| kestrel.reuseport.drain.connections | counter | {connection} | kestrel.reuseport.drain.outcome=' "$WORK/a-drain.md" && SEEN+=(drain.connections)
grep -q '| kestrel.reuseport.drain.duration | histogram | s | kestrel.reuseport.drain.result=' "$WORK/a-drain.md" && SEEN+=(drain.duration)
log "A's drain measurements reported before it exited: ${SEEN[*]:-none, only its instruments (and their EndInstrumentReporting)}"

if ((${#FAILURES[@]})); then
    printf 'MISSING: %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
log "every expected instrument seen"
