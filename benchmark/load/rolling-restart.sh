#!/usr/bin/env bash
# Rolling restarts of the Release sample (sample/WebApp, Kestrel.ReusePort) on one loopback port under constant load:
# instance 1 starts; a load generator runs for the whole phase; then N times: a new instance starts on the same
# --urls (taking the listening sockets over from the running one), and once it has started the old one gets SIGTERM
# and must exit within a bounded time. At the end the load stops, and its requests, socket errors, non-2xx responses
# and latency are printed, next to a steady-state run of the same length without restarts (for the p99).
# Exits 1 if either phase saw any socket error or non-2xx response, 2 on a setup failure.
#
# Usage: benchmark/load/rolling-restart.sh [options]
#   --restarts N         rolling restarts (default 20)
#   --mode M             churn (every request on a new connection, -H 'Connection: close') or keepalive (default churn)
#   --migrate-req X      run with net.ipv4.tcp_migrate_req=X (0 or 1; restored on exit); default: leave it as it is
#   --tool T             wrk (default) or bombardier (only a real one, codesenberg's, on PATH)
#   --connections C      load connections (default 32)
#   --threads T          wrk threads (default 1)
#   --interval S         seconds of load between a restart and the next one (default 1)
#   --stop-timeout S     longest wait for an old instance to exit after SIGTERM, before SIGKILL (default 30)
#   --app-args "ARGS"    extra arguments for every instance, e.g. "--ReusePort:SocketHandoff=false"
#   --control            control run: each "restart" starts and stops a bystander instance on ANOTHER port while
#                        instance 1 keeps serving, so the start-up and shutdown CPU cost is the same but no socket
#                        changes hands; shows how much of the restart p99 is only start-up competing for the cores
#   --no-steady          skip the steady-state run
#   --no-build           use the existing Release build
#   --keep-tmp           keep the temp dir (logs are copied to results/ anyway)
# Default total time: 20 restarts x (0.3-1.5 s start-up + 0.1 s drain + 1 s) for the restarts phase, as long again for the
# steady run, plus the build: about 1.5 to 3 minutes.
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RESTARTS=20
MODE=churn
MIGRATE_REQ=""
TOOL=wrk
CONNECTIONS=32
THREADS=1
INTERVAL=1
STOP_TIMEOUT=30
APP_ARGS=""
STEADY=1
BUILD=1
CONTROL=0

while (($#)); do
    case "$1" in
        --restarts) RESTARTS=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --migrate-req) MIGRATE_REQ=$2; shift 2 ;;
        --tool) TOOL=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --interval) INTERVAL=$2; shift 2 ;;
        --stop-timeout) STOP_TIMEOUT=$2; shift 2 ;;
        --app-args) APP_ARGS=$2; shift 2 ;;
        --no-steady) STEADY=0; shift ;;
        --control) CONTROL=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$RESTARTS" =~ ^[0-9]+$ ]] || die "--restarts must be a number"
[[ "$MODE" =~ ^(churn|keepalive)$ ]] || die "--mode must be churn or keepalive"
[[ -z "$MIGRATE_REQ" || "$MIGRATE_REQ" =~ ^[01]$ ]] || die "--migrate-req must be 0 or 1"
case "$TOOL" in
    wrk) require wrk ;;
    bombardier) real_bombardier || die "--tool bombardier needs codesenberg's bombardier on PATH (Debian's bombardier package is a game)" ;;
    *) die "--tool must be wrk or bombardier" ;;
esac
require dotnet curl ss awk sort
read -r -a EXTRA_ARGS <<<"$APP_ARGS"

MIGRATE_PATH=/proc/sys/net/ipv4/tcp_migrate_req
MIGRATE_OLD=""
restore_and_cleanup() {
    cleanup_children
    if [[ -n "$MIGRATE_OLD" ]]; then
        sysctl -q -w net.ipv4.tcp_migrate_req="$MIGRATE_OLD" >/dev/null 2>&1 || echo "$MIGRATE_OLD" >"$MIGRATE_PATH" || log "could not restore net.ipv4.tcp_migrate_req=$MIGRATE_OLD"
        log "net.ipv4.tcp_migrate_req restored to $MIGRATE_OLD"
    fi
}
WORK_DIR=$(mktemp -d /tmp/kestrel-reuseport-rolling.XXXXXX)
trap restore_and_cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "$MIGRATE_REQ" ]]; then
    [[ -r "$MIGRATE_PATH" ]] || die "this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+)"
    current=$(cat "$MIGRATE_PATH")
    if [[ "$current" != "$MIGRATE_REQ" ]]; then
        MIGRATE_OLD=$current
        sysctl -q -w net.ipv4.tcp_migrate_req="$MIGRATE_REQ" >/dev/null || die "sysctl -w net.ipv4.tcp_migrate_req=$MIGRATE_REQ failed (root needed)"
    fi
fi
MIGRATE_NOW=$(cat "$MIGRATE_PATH" 2>/dev/null || echo unavailable)

((BUILD)) && build_apps
[[ -f "$REUSEPORT_DLL" ]] || die "Release build missing; run without --no-build"

STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS_DIR="$LOAD_DIR/results"
LOGS_DIR="$RESULTS_DIR/rolling-restart-$STAMP-$MODE-migrate$MIGRATE_NOW"
mkdir -p "$LOGS_DIR"
EVENTS="$WORK_DIR/events.tsv"
printf 'restart\tnew_pid\tready_s\ttaken_over\told_pid\told_conns\tnew_conns\tstop_s\told_exit\tkilled\tdrain\n' >"$EVENTS"

INSTANCE=0
INSTANCE_PID=""
INSTANCE_LOG=""

# Starts instance number INSTANCE+1 on ${1:-$PORT} and waits (at most 30 s) until its host has started; sets INSTANCE_PID,
# INSTANCE_LOG and READY_SECONDS. With another instance running, curl cannot tell the two apart, so readiness is
# read from the new instance's own log: "Application started" comes after Kestrel bound and started accepting.
start_instance() {
    local port=${1:-$PORT} start=$EPOCHREALTIME deadline
    INSTANCE=$((INSTANCE + 1))
    INSTANCE_LOG="$WORK_DIR/instance-$INSTANCE.log"
    dotnet "$REUSEPORT_DLL" --contentRoot "${REUSEPORT_DLL%/*}" --urls "http://127.0.0.1:$port" "${EXTRA_ARGS[@]}" >"$INSTANCE_LOG" 2>&1 &
    INSTANCE_PID=$!
    track_child "$INSTANCE_PID"
    deadline=$((SECONDS + 30))
    until grep -q 'Application started' "$INSTANCE_LOG" 2>/dev/null; do
        kill -0 "$INSTANCE_PID" 2>/dev/null || { cat "$INSTANCE_LOG" >&2; die "instance $INSTANCE (pid $INSTANCE_PID) exited during start-up"; }
        ((SECONDS < deadline)) || { cat "$INSTANCE_LOG" >&2; die "instance $INSTANCE did not start within 30 s"; }
        sleep 0.02
    done
    READY_SECONDS=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
}

# Established connections on $PORT owned by process $1 and by process $2 (server side, from ss -p).
connections_of() {
    ss -Htnp state established "( sport = :$PORT )" 2>/dev/null |
        awk -v a="pid=$1," -v b="pid=$2," '{ if (index($0, a)) x++; else if (index($0, b)) y++ } END { printf "%d %d\n", x, y }'
}

LOAD_PID=""
# Starts the load generator in the background on $1 for at most $2 seconds, output to $3; stopped early by SIGINT,
# on which both wrk and bombardier print their report.
start_load() {
    local url=$1 seconds=$2 out=$3 header=()
    [[ "$MODE" == churn ]] && header=(-H 'Connection: close')
    case "$TOOL" in
        wrk) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency --timeout 2s "${header[@]}" "$url" >"$out" 2>&1 & ;;
        bombardier) bombardier -c "$CONNECTIONS" -d "${seconds}s" -l -p r --timeout 2s "${header[@]}" "$url" >"$out" 2>&1 & ;;
    esac
    LOAD_PID=$!
    track_child "$LOAD_PID"
}

stop_load() {
    local deadline=$((SECONDS + 20))
    kill -INT "$LOAD_PID" 2>/dev/null || true
    while kill -0 "$LOAD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -0 "$LOAD_PID" 2>/dev/null && kill -KILL "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
    untrack_child "$LOAD_PID"
}

parse_load() { if [[ "$TOOL" == wrk ]]; then parse_wrk "$1"; else parse_bombardier "$1"; fi; }

# ---- phase 1: rolling restarts under load -------------------------------------------------------------------------
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"
PHASE="$RESTARTS rolling restarts"
((CONTROL)) && PHASE="$RESTARTS bystander starts (control)"
log "$PHASE: on $URL, $MODE load ($TOOL, $CONNECTIONS connections), tcp_migrate_req=$MIGRATE_NOW${APP_ARGS:+, app args: $APP_ARGS}"
start_instance
log "instance 1 (pid $INSTANCE_PID) ready in ${READY_SECONDS}s: $(grep -o 'Listening on .*' "$INSTANCE_LOG" | head -1)"
drive_seconds=$(( (RESTARTS + 1) * (STOP_TIMEOUT + 30 + INTERVAL) + 60 ))   # an upper bound only: stopped by SIGINT
START_PHASE=$EPOCHREALTIME
start_load "$URL" "$drive_seconds" "$WORK_DIR/restarts.out"
sleep "$INTERVAL"

FAILED_STOPS=0
for ((restart = 1; restart <= RESTARTS; restart++)); do
    if ((CONTROL)); then
        serving_pid=$INSTANCE_PID
        serving_log=$INSTANCE_LOG
        start_instance "$(free_port)"
    fi
    old_pid=$INSTANCE_PID
    old_log=$INSTANCE_LOG
    ((CONTROL)) || start_instance
    taken=$(grep -o '([0-9]* taken over' "$INSTANCE_LOG" | head -1 | tr -dc '0-9' || true)
    read -r old_conns new_conns <<<"$(connections_of "$old_pid" "$INSTANCE_PID")"
    stop_process "$old_pid" "$STOP_TIMEOUT"
    drain=$(grep -o 'Drain ended after [0-9]* ms with [0-9]* connections still open' "$old_log" | head -1 | sed -E 's/Drain ended after ([0-9]+) ms with ([0-9]+) .*/\1 ms, \2 left/' || true)
    if ((STOP_KILLED)) || ((STOP_STATUS != 0)); then FAILED_STOPS=$((FAILED_STOPS + 1)); fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$restart" "$INSTANCE_PID" "$READY_SECONDS" "${taken:-0}" "$old_pid" "$old_conns" "$new_conns" "$STOP_SECONDS" "$STOP_STATUS" "$STOP_KILLED" "${drain:-none}" >>"$EVENTS"
    log "restart $restart/$RESTARTS: pid $INSTANCE_PID ready in ${READY_SECONDS}s (${taken:-0} sockets taken over); connections before SIGTERM: old $old_conns, new $new_conns; pid $old_pid exited ${STOP_STATUS} after ${STOP_SECONDS}s (drain: ${drain:-none})"
    if ((CONTROL)); then
        INSTANCE_PID=$serving_pid
        INSTANCE_LOG=$serving_log
    fi
    sleep "$INTERVAL"
done
stop_load
PHASE_SECONDS=$(awk -v a="$START_PHASE" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a + 0.5 }')
stop_process "$INSTANCE_PID" "$STOP_TIMEOUT"
read -r R_RPS R_REQ R_P50 R_P90 R_P99 R_CON R_READ R_WRITE R_TMO R_NON2XX <<<"$(parse_load "$WORK_DIR/restarts.out")"

# ---- phase 2: the same load for as long, without restarts ----------------------------------------------------------
if ((STEADY)); then
    PORT=$(free_port)
    URL="http://127.0.0.1:$PORT/"
    log "steady state: ${PHASE_SECONDS}s of the same load on $URL, no restarts"
    start_instance
    start_load "$URL" "$PHASE_SECONDS" "$WORK_DIR/steady.out"
    deadline=$((SECONDS + PHASE_SECONDS + 30))
    while kill -0 "$LOAD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    stop_load
    stop_process "$INSTANCE_PID" "$STOP_TIMEOUT"
    read -r S_RPS S_REQ S_P50 S_P90 S_P99 S_CON S_READ S_WRITE S_TMO S_NON2XX <<<"$(parse_load "$WORK_DIR/steady.out")"
fi

# ---- report --------------------------------------------------------------------------------------------------------
cp "$WORK_DIR"/*.log "$WORK_DIR"/*.out "$EVENTS" "$LOGS_DIR/" 2>/dev/null || true
problems=$(grep -hE '^(warn|fail|crit):' "$WORK_DIR"/instance-*.log | sort | uniq -c | sort -rn | head -20 || true)
handoffs=$(awk -F'\t' 'NR > 1 && $4 > 0' "$EVENTS" | wc -l)
ready_median=$(awk -F'\t' 'NR > 1 { print $3 }' "$EVENTS" | median)
stop_median=$(awk -F'\t' 'NR > 1 { print $8 }' "$EVENTS" | median)
stop_max=$(awk -F'\t' 'NR > 1 { print $8 }' "$EVENTS" | sort -g | tail -1)
REPORT="$LOGS_DIR/report.md"
{
    echo "# Rolling restarts$( ((CONTROL)) && echo " (control: bystander instances on another port)"): $MODE, tcp_migrate_req=$MIGRATE_NOW"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r). $RESTARTS restarts of sample/WebApp (Release) on one port, $TOOL with $CONNECTIONS connections$([[ $MODE == churn ]] && echo ", -H 'Connection: close'")${APP_ARGS:+, app args: $APP_ARGS}."
    echo "Restarts: $handoffs of $RESTARTS new instances took the sockets over; start-up median ${ready_median}s; SIGTERM to exit median ${stop_median}s, max ${stop_max:-0}s; $FAILED_STOPS stops failed or were killed."
    echo
    echo "| phase | seconds | requests | req/s | socket errors connect | read | write | timeout | non-2xx | p50 ms | p90 ms | p99 ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    echo "| $PHASE | $PHASE_SECONDS | $R_REQ | $R_RPS | $R_CON | $R_READ | $R_WRITE | $R_TMO | $R_NON2XX | $R_P50 | $R_P90 | $R_P99 |"
    ((STEADY)) && echo "| steady state | $PHASE_SECONDS | $S_REQ | $S_RPS | $S_CON | $S_READ | $S_WRITE | $S_TMO | $S_NON2XX | $S_P50 | $S_P90 | $S_P99 |"
    echo
    if [[ -n "$problems" ]]; then
        echo "Warnings and errors logged by the instances (count, line):"
        echo '```'
        echo "$problems"
        echo '```'
    else
        echo "The instances logged no warning or error."
    fi
    echo
    echo "Per restart (events.tsv): restart, new pid, start-up s, sockets taken over, old pid, established connections of the old and the new instance just before SIGTERM (ss), SIGTERM-to-exit s, exit status, killed, drain."
} >"$REPORT"
echo
cat "$REPORT"
echo
log "logs, load-generator output and events: $LOGS_DIR"

errors=$((R_CON + R_READ + R_WRITE + R_TMO + R_NON2XX + FAILED_STOPS))
((STEADY)) && errors=$((errors + S_CON + S_READ + S_WRITE + S_TMO + S_NON2XX))
if ((errors > 0)); then
    log "FAILED: socket errors, non-2xx responses or failed stops (see above)"
    exit 1
fi
log "OK: no socket error, no non-2xx response"
