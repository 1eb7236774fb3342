#!/usr/bin/env bash
# A rolling deploy of sample/WebApp on one 127.0.0.1 port, watched with dotnet-counters (the repository's local tool,
# brought by `dotnet tool restore`): one `dotnet-counters collect` per instance, each into a CSV file, then the deploy
# instruments of the meter Kestrel.ReusePort as those files hold them.
#
#   1. instance A starts; four keep-alive connections to it are opened and left idle (before B exists, so that they
#      are certainly A's: once B shares A's sockets, the kernel gives a new connection to either);
#   2. `dotnet-counters collect -p A` runs from then until A exits;
#   3. instance B starts suspended on a diagnostic port that its own `dotnet-counters collect --diagnostic-port` listens
#      on (DOTNET_DiagnosticPorts), so that collect sees B from its first instruction: the takeover and the warm-up;
#      B serves a few requests;
#   4. a GET /delay/6000 goes out on connection 4, then SIGTERM to A: it drains with a 3 s bound (DrainTimeout).
#      Connection 1 sends a request (answered with Connection: close), connection 2 is closed by the client,
#      connection 3 stays idle (closed at the bound), and the slow request keeps A alive past the bound, so that the
#      drain's measurements reach collect before A exits (a meter's last interval dies with its process);
#   5. SIGTERM to B; each instance's rows of Kestrel.ReusePort are printed, summed over the intervals (counters are
#      written as their increase per interval), histograms as their last percentiles.
#
# Exits 0 when the files show the expected instruments and attributes (checks at the end), 1 otherwise. Stops
# everything it started, by pid.
#
#   benchmark/load/deploy-counters.sh [--no-build] [--keep] [--refresh-interval SECONDS]
#     --no-build           use the Release build already there
#     --keep               keep the work folder (CSV files, logs) and say where it is
#     --refresh-interval   dotnet-counters' interval (default 1)
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUILD=1
REFRESH=1
while (($#)); do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --keep) KEEP_TMP=1; shift ;;
        --refresh-interval) REFRESH=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

require dotnet curl ss awk
WORK_DIR=$(mktemp -d /tmp/kestrel-reuseport-counters.XXXXXX)
IDLE_OPEN=0
close_idle() { if ((IDLE_OPEN)); then exec 3>&- 4>&- 5>&- 6>&-; IDLE_OPEN=0; fi; }
trap 'close_idle; cleanup_children; ((${KEEP_TMP:-0})) && log "work folder kept: $WORK_DIR"' EXIT
trap 'exit 130' INT TERM

cd "$REPO_ROOT"
log "dotnet tool restore (dotnet-counters, from the manifest dotnet-tools.json)"
dotnet tool restore >"$WORK_DIR/tool-restore.log" 2>&1 || { cat "$WORK_DIR/tool-restore.log" >&2; die "dotnet tool restore failed"; }
COUNTERS=(dotnet tool run dotnet-counters --)
COUNTER_LIST=Kestrel.ReusePort,Microsoft.AspNetCore.Server.Kestrel

if ((BUILD)); then
    log "dotnet build -c Release sample/WebApp"
    dotnet build -c Release --nologo -v quiet sample/WebApp >"$WORK_DIR/build.log" 2>&1 || { tail -20 "$WORK_DIR/build.log" >&2; die "build failed"; }
fi
[[ -f "$REUSEPORT_DLL" ]] || die "missing $REUSEPORT_DLL (run without --no-build)"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# A rendezvous of this run's own: instances of other runs on this machine never meet these.
APP_ARGS=(--contentRoot "${REUSEPORT_DLL%/*}" --urls "$URL" --ReusePort:RendezvousDirectory="$WORK_DIR/rendezvous" --ReusePort:DrainTimeout=00:00:03)

# Every child gets 3>&- 4>&- 5>&- 6>&-: one that kept the idle connections' descriptors would keep them open.
requests() {
    local i
    for ((i = 0; i < $1; i++)); do
        curl -s -m 5 -H 'Connection: close' "$URL/" >>"$WORK_DIR/responses.txt" 3>&- 4>&- 5>&- 6>&-
    done
}

# keep_alive FD: one request on connection FD, its answer read; the connection then stays idle on A.
keep_alive() {
    local fd=$1 line=
    printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
    while IFS= read -r -t 5 line <&"$fd"; do [[ "$line" == ok* ]] && return 0; done
    die "idle connection $fd got no answer"
}

# wait_for FILE PATTERN SECONDS: until a line of FILE matches, or the time is up.
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

log "1. instance A on $URL"
dotnet "$REUSEPORT_DLL" "${APP_ARGS[@]}" >"$WORK_DIR/a.log" 2>&1 3>&- 4>&- 5>&- 6>&- &
A=$!
track_child "$A"
wait_ready "$URL/healthz" "$A" 60 || { cat "$WORK_DIR/a.log" >&2; die "A did not start"; }
requests 3
exec 3<>"/dev/tcp/127.0.0.1/$PORT" 4<>"/dev/tcp/127.0.0.1/$PORT" 5<>"/dev/tcp/127.0.0.1/$PORT" 6<>"/dev/tcp/127.0.0.1/$PORT"
IDLE_OPEN=1
for fd in 3 4 5 6; do keep_alive "$fd"; done

A_COMMAND=("${COUNTERS[@]}" collect -p "$A" --counters "$COUNTER_LIST" --refresh-interval "$REFRESH" --format csv -o "$WORK_DIR/a.csv")
log "2. ${A_COMMAND[*]#"$WORK_DIR"/}"
"${A_COMMAND[@]}" >"$WORK_DIR/a-counters.log" 2>&1 3>&- 4>&- 5>&- 6>&- &
A_COLLECT=$!
track_child "$A_COLLECT"
# collect writes its file when it ends; it says when its session starts, and the meter reports from the next interval.
wait_for "$WORK_DIR/a-counters.log" 'Starting a counter session' 30 || { cat "$WORK_DIR/a-counters.log" >&2; die "collect on A did not start"; }
sleep $((2 * REFRESH))

B_COMMAND=("${COUNTERS[@]}" collect --diagnostic-port "$WORK_DIR/b.sock" --counters "$COUNTER_LIST" --refresh-interval "$REFRESH" --format csv -o "$WORK_DIR/b.csv")
log "3. ${B_COMMAND[*]#"$WORK_DIR"/}, then instance B with DOTNET_DiagnosticPorts=b.sock"
"${B_COMMAND[@]}" >"$WORK_DIR/b-counters.log" 2>&1 3>&- 4>&- 5>&- 6>&- &
B_COLLECT=$!
track_child "$B_COLLECT"
for ((i = 0; i < 300; i++)); do [[ -S "$WORK_DIR/b.sock" ]] && break; sleep 0.1; done
[[ -S "$WORK_DIR/b.sock" ]] || { cat "$WORK_DIR/b-counters.log" >&2; die "collect for B does not listen on its diagnostic port"; }
DOTNET_DiagnosticPorts="$WORK_DIR/b.sock" dotnet "$REUSEPORT_DLL" "${APP_ARGS[@]}" >"$WORK_DIR/b.log" 2>&1 3>&- 4>&- 5>&- 6>&- &
B=$!
track_child "$B"
wait_for "$WORK_DIR/b.log" 'Application started' 60 || { cat "$WORK_DIR/b.log" "$WORK_DIR/b-counters.log" >&2; die "B did not start"; }
requests 6
sleep "$REFRESH"

log "4. GET /delay/6000 on connection 4, SIGTERM to A (drain bound 3 s)"
printf 'GET /delay/6000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&6
kill -TERM "$A"
wait_for "$WORK_DIR/a.log" 'Kestrel.ReusePort\[12\]' 10 || die "A did not begin to drain"
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3
exec 4>&-
A_STATUS=0
wait "$A" || A_STATUS=$?
untrack_child "$A"
log "A exited ($A_STATUS)"
wait "$A_COLLECT" || true
untrack_child "$A_COLLECT"
close_idle

log "5. SIGTERM to B"
sleep "$REFRESH"
stop_process "$B" 15
kill -INT "$B_COLLECT" 2>/dev/null || true
wait "$B_COLLECT" || true
untrack_child "$B_COLLECT"

# summary NAME: the Kestrel.ReusePort rows of NAME.csv (Timestamp,Provider,Counter Name,Counter Type,Mean/Increment),
# one per instrument and attributes: a counter's increases ("Rate", per interval) summed, else the last value (a gauge,
# or a histogram's percentile, which dotnet-counters writes as the attribute Percentile).
summary() {
    awk -F, '
        NR == 1 || $2 != "Kestrel.ReusePort" { next }
        { key = $3 SUBSEP $4; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
          if ($4 == "Rate") total[key] += $5; else total[key] = $5 }
        END { print "| instrument (unit) | attributes | as written | value |"; print "|---|---|---|---:|"
              for (i = 1; i <= n; i++) { split(order[i], p, SUBSEP); name = p[1]; tags = ""
                  if (match(name, /\[.*\]$/)) { tags = substr(name, RSTART + 1, RLENGTH - 2); name = substr(name, 1, RSTART - 1) }
                  gsub(/;/, ", ", tags)
                  printf "| %s | %s | %s | %s |\n", name, tags, (p[2] == "Rate" ? "increase, summed" : "last value"), total[order[i]] } }' "$WORK_DIR/$1.csv"
}

echo
echo "## dotnet-counters collect, instance A (pid $A): ${A_COMMAND[*]#"$WORK_DIR"/}"
echo
summary a | tee "$WORK_DIR/a.summary"
echo
echo "## dotnet-counters collect, instance B (pid $B): ${B_COMMAND[*]#"$WORK_DIR"/}"
echo
summary b | tee "$WORK_DIR/b.summary"
echo

# check NAME TEXT...: some summary row of NAME holds every TEXT.
FAILURES=()
check() {
    local name=$1 rows text
    shift
    rows=$(cat "$WORK_DIR/$name.summary")
    for text in "$@"; do rows=$(grep -F -- "$text" <<<"$rows" || true); done
    [[ -n "$rows" ]] || FAILURES+=("$name: no row with: $*")
}
check b 'kestrel.reuseport.handoff.duration' 'kestrel.reuseport.handoff.result=taken_over' "server.port=$PORT"
check b 'kestrel.reuseport.warmup.duration' 'server.address=127.0.0.1'
check b 'kestrel.reuseport.handoff.sockets' 'kestrel.reuseport.handoff.direction=received'
check a 'kestrel.reuseport.handoff.sockets' 'kestrel.reuseport.handoff.direction=sent'
check a 'kestrel.reuseport.drain.duration' 'kestrel.reuseport.drain.result=timed_out'
for outcome in connection_close client_closed closed_idle; do
    check a 'kestrel.reuseport.drain.connections' "kestrel.reuseport.drain.outcome=$outcome"
done
if ((${#FAILURES[@]})); then
    printf 'MISSING: %s\n' "${FAILURES[@]}" >&2
    KEEP_TMP=1
    exit 1
fi
log "every expected instrument seen"
