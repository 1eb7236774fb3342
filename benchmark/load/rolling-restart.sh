#!/usr/bin/env bash
# Rolling restarts of the Release sample (sample/WebApp, Kestrel.ReusePort) on one loopback port under constant load:
# instance 1 starts; a load generator runs for the whole phase; then N times: a new instance starts on the same
# --urls (taking the listening sockets over from the running one), and once it has started the old one gets SIGTERM
# and must exit within a bounded time. At the end the load stops, and its requests, socket errors, non-2xx responses
# and latency are printed, next to a steady-state run of the same length without restarts (for the p99 and throughput
# ratios). --server nohandoff and stock replace the sample's handoff with its own sockets or with stock Kestrel stopped
# then started; --tool timeline records throughput, p99 and errors per short interval; --timeline-compare draws the
# three servers' timelines in one PNG.
# Exits 1 if either phase saw any socket error or non-2xx response (with --server stock: not for the restarts phase),
# or an instance did not stop cleanly; 2 on a setup failure.
#
# Usage: benchmark/load/rolling-restart.sh [options]
#   --restarts N         rolling restarts (default 20)
#   --mode M             churn (every request on a new connection, -H 'Connection: close'), keepalive, or h2
#                        (HTTP/2 over TLS with a self-signed certificate; only with --tool timeline or h2load)
#                        (default churn)
#   --h2c                with --mode h2: cleartext HTTP/2 (prior knowledge) instead of TLS
#   --server S           reuseport (default): sample/WebApp, start the new instance, then SIGTERM the old one;
#                        nohandoff: the same with --ReusePort:SocketHandoff=false; stock: benchmark/StockWebApp (plain
#                        Kestrel), stop-then-start: SIGTERM the old one, wait for its exit, then start the new one (the
#                        port refuses connections in between: its errors are reported, but do not make the exit status 1)
#   --migrate-req X      run with net.ipv4.tcp_migrate_req=X (0 or 1; restored on exit); default: leave it as it is
#   --tool T             wrk (default), bombardier (only a real one, codesenberg's, on PATH), h2load (--mode h2 only;
#                        a fresh h2load for every restart, see below) or timeline
#                        (benchmark/LoadTimeline: throughput, p99 and errors per --timeline-ms interval, in
#                        restarts.tsv and steady.tsv next to report.md)
#   --connections C      load connections (default 32)
#   --threads T          wrk threads (default 1)
#   --streams M          h2: concurrent requests per connection (h2load -m, LoadTimeline --streams) (default 4)
#   --interval S         seconds of load between the end of a restart and the start of the next one (default 1)
#   --every S            start a restart every S seconds instead, however long the previous one took (a deploy
#                        every S seconds); --interval is then only the load before the first restart
#   --timeline-ms MS     interval of the timeline (--tool timeline) (default 250)
#   --stop-timeout S     longest wait for an old instance to exit after SIGTERM, before SIGKILL (default 35: the drain's
#                       bound, HostOptions.ShutdownTimeout = 30 s, plus 5 s to exit, as sample/rolling-deploy.sh)
#   --app-args "ARGS"    extra arguments for every instance, e.g. "--ReusePort:DrainTimeout=00:00:10"
#   --squatters          as user nobody (needs root and setpriv), before instance 1 starts: take every place another
#                        user can write that an instance might look at for the handoff (squatter.pl: abstract names,
#                        kestrel-reuseport directories, sockets that accept and never answer, links in /tmp, /var/tmp
#                        and /dev/shm); a deploy must lose nothing and take no longer than without them
#   --control            control run: each "restart" starts and stops a bystander instance on ANOTHER port while
#                        instance 1 keeps serving, so the start-up and shutdown CPU cost is the same but no socket
#                        changes hands; shows how much of the restart p99 is only start-up competing for the cores
#   --timeline-compare   run reuseport, nohandoff and stock one after the other (--tool timeline, the same mode,
#                        restarts and interval; each with its steady phase) and draw one PNG of the three timelines:
#                        results/deploy-timeline-<date>.png and .md; unless --no-publish, copied to
#                        benchmark/load/deploy-timeline.png and deploy-timeline.md. Exit status 1 only if the reuseport
#                        run failed
#   --no-publish         with --timeline-compare: write only under results/
#   --replot DIR         draw the plot and summary of an earlier --timeline-compare run again from its results
#                        (results/deploy-timeline-<date>/; give the same options as that run), without running anything
#   --no-steady          skip the steady-state run
#   --no-build           use the existing Release builds
#   --keep-tmp           keep the temp dir (logs are copied to results/ anyway)
# Default total time: 20 restarts x (0.3-1.5 s start-up + 0.1 s drain + 1 s) for the restarts phase, as long again for the
# steady run, plus the build: about 1.5 to 3 minutes (three times that with --timeline-compare).
# h2load's HTTP/2 clients never reconnect after a GOAWAY (they end), so with --tool h2load every restart gets a fresh
# h2load: started before the new instance, with more requests than it can make (-n), it ends by itself once the old
# instance sent GOAWAY on each of its connections. Its streams are counted from its per-request log (--log-file): a
# failed stream (status -1) is an error, though h2load's own summary also counts, as failed, the stream each client
# could not open after the GOAWAY (never sent). It prints no latency percentiles. The steady run is one h2load -D.
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RESTARTS=20
MODE=churn
MIGRATE_REQ=""
TOOL=wrk
TOOL_SET=0
CONNECTIONS=32
THREADS=1
STREAMS=4
INTERVAL=1
EVERY=""
TIMELINE_MS=250
STOP_TIMEOUT=35
APP_ARGS=""
STEADY=1
BUILD=1
CONTROL=0
SQUATTERS=0
SQUATTER_PID=""
SERVER=reuseport
SERVER_SET=0
H2C=0
COMPARE=0
PUBLISH=1
REPLOT=""
FORCED_LOGS_DIR=""

while (($#)); do
    case "$1" in
        --restarts) RESTARTS=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --h2c) H2C=1; shift ;;
        --server) SERVER=$2; SERVER_SET=1; shift 2 ;;
        --migrate-req) MIGRATE_REQ=$2; shift 2 ;;
        --tool) TOOL=$2; TOOL_SET=1; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --streams) STREAMS=$2; shift 2 ;;
        --interval) INTERVAL=$2; shift 2 ;;
        --every) EVERY=$2; shift 2 ;;
        --timeline-ms) TIMELINE_MS=$2; shift 2 ;;
        --stop-timeout) STOP_TIMEOUT=$2; shift 2 ;;
        --app-args) APP_ARGS=$2; shift 2 ;;
        --no-steady) STEADY=0; shift ;;
        --control) CONTROL=1; shift ;;
        --squatters) SQUATTERS=1; shift ;;
        --timeline-compare) COMPARE=1; shift ;;
        --no-publish) PUBLISH=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        --replot) REPLOT=$2; COMPARE=1; shift 2 ;;
        --logs-dir) FORCED_LOGS_DIR=$2; shift 2 ;;   # internal: where --timeline-compare wants a run's results
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
NUMBER='^[0-9]+([.][0-9]+)?$'
[[ "$RESTARTS" =~ ^[0-9]+$ ]] || die "--restarts must be a number"
[[ "$MODE" =~ ^(churn|keepalive|h2)$ ]] || die "--mode must be churn, keepalive or h2"
[[ "$SERVER" =~ ^(reuseport|nohandoff|stock)$ ]] || die "--server must be reuseport, nohandoff or stock"
[[ -z "$MIGRATE_REQ" || "$MIGRATE_REQ" =~ ^[01]$ ]] || die "--migrate-req must be 0 or 1"
[[ "$INTERVAL" =~ $NUMBER ]] || die "--interval must be a number of seconds"
[[ -z "$EVERY" || ("$EVERY" =~ $NUMBER && "$EVERY" != 0) ]] || die "--every must be a positive number of seconds"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ && "$STREAMS" =~ ^[1-9][0-9]*$ && "$TIMELINE_MS" =~ ^[1-9][0-9]*$ ]] ||
    die "--connections, --streams and --timeline-ms must be positive integers"
((H2C == 0)) || [[ "$MODE" == h2 ]] || die "--h2c goes with --mode h2"
if ((COMPARE)); then
    ((TOOL_SET == 0)) || [[ "$TOOL" == timeline ]] || die "--timeline-compare uses --tool timeline"
    ((SERVER_SET == 0)) || die "--timeline-compare runs every --server; leave --server out"
    ((CONTROL == 0)) || die "--timeline-compare and --control do not go together"
    TOOL=timeline
fi
case "$TOOL" in
    wrk) require wrk; [[ "$MODE" != h2 ]] || die "--mode h2 needs --tool timeline or --tool h2load" ;;
    bombardier)
        real_bombardier || die "--tool bombardier needs codesenberg's bombardier on PATH (Debian's bombardier package is a game)"
        [[ "$MODE" != h2 ]] || die "--mode h2 needs --tool timeline or --tool h2load" ;;
    h2load) require h2load; [[ "$MODE" == h2 ]] || die "--tool h2load needs --mode h2" ;;
    timeline) ;;
    *) die "--tool must be wrk, bombardier, h2load or timeline" ;;
esac
require dotnet curl ss awk sort
[[ "$MODE" == h2 && "$H2C" == 0 ]] && require openssl
read -r -a EXTRA_ARGS <<<"$APP_ARGS"

# Starts squatter.pl as user nobody for 127.0.0.1:$PORT and waits until it holds every place (--squatters).
start_squatter() {
    [[ $(id -u) == 0 ]] || die "--squatters needs root, to run the squatter as user nobody"
    require setpriv perl
    local out="$WORK_DIR/squatter.out" rendezvous=/run/kestrel-reuseport
    [[ -n "${RUNTIME_DIRECTORY:-}" ]] && rendezvous="${RUNTIME_DIRECTORY%%:*}/kestrel-reuseport"
    setpriv --reuid=nobody --regid=nogroup --clear-groups perl -e "$(cat "$LOAD_DIR/squatter.pl")" "127.0.0.1:$PORT" "$rendezvous" >"$out" 2>&1 &
    SQUATTER_PID=$!
    local deadline=$((SECONDS + 20))
    until grep -q '^squatting$' "$out" 2>/dev/null; do
        ((SECONDS < deadline)) && running "$SQUATTER_PID" || { cat "$out" >&2; die "the squatter did not start"; }
        sleep 0.05
    done
    log "user nobody squats $(grep -c '^/' "$out") paths and 3 abstract names for 127.0.0.1:$PORT (pid $SQUATTER_PID)"
}

# Stops the squatter and removes the paths it made (it prints each one).
remove_squatter() {
    [[ -n "$SQUATTER_PID" ]] || return 0
    kill -KILL "$SQUATTER_PID" 2>/dev/null || true
    wait "$SQUATTER_PID" 2>/dev/null || true
    grep '^/' "$WORK_DIR/squatter.out" 2>/dev/null | sort -r | while read -r path; do rm -rf -- "$path"; done
    SQUATTER_PID=""
}

MIGRATE_PATH=/proc/sys/net/ipv4/tcp_migrate_req
MIGRATE_OLD=""
restore_and_cleanup() {
    remove_squatter
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

if ((BUILD)) && [[ -z "$REPLOT" ]]; then
    build_apps
    [[ "$TOOL" == timeline ]] && build_timeline
fi
[[ -f "$REUSEPORT_DLL" && -f "$STOCK_DLL" ]] || die "Release build missing; run without --no-build"
[[ "$TOOL" != timeline || -f "$TIMELINE_DLL" ]] || die "LoadTimeline Release build missing; run without --no-build"

STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS_DIR="$LOAD_DIR/results"
if [[ -n "$REPLOT" ]]; then
    [[ -d "$REPLOT" && "$(basename "$REPLOT")" =~ ^deploy-timeline-(.+)$ ]] || die "--replot needs a results/deploy-timeline-<date> directory"
    STAMP=${BASH_REMATCH[1]}
    RESULTS_DIR=$(cd "$(dirname "$REPLOT")" && pwd)
fi

# Seconds from now until Unix time $1 (0 if past), for sleep.
seconds_until() { awk -v t="$1" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; printf "%.3f\n", (d > 0 ? d : 0) }'; }
# $1 / $2 as "1.23x", or n/a when either is not a positive number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2fx\n", a / b; else print "n/a" }'; }
# From a timeline TSV ($1) and its events.tsv ($2), over the intervals from the first restart's start on (before it, the
# load generator's own start-up): "intervals with-errors without-response seconds-without-response lowest-req/s at-s
# highest-p99-ms at-s".
timeline_stats() {
    local from
    from=$(awk -F'\t' 'NR == 2 { print $12 }' "$2" 2>/dev/null)
    awk -F'\t' -v from="${from:-0}" 'NR > 1 && $2 + $3 > from + 0 { n++; if ($10 > 0) e++; if ($4 == 0) { z++; zs += $3 }
            if ($3 >= 0.9 * len || len == 0) { if (min == "" || $5 < min + 0) { min = $5; mint = $1 } }
            if ($14 != "NaN" && $14 + 0 > maxp + 0) { maxp = $14; maxt = $1 } }
        NR == 2 { len = $3 }
        END { printf "%d %d %d %.2f %s %s %s %s\n", n, e, z, zs, (min == "" ? "n/a" : min), (mint == "" ? "n/a" : mint), (maxp == "" ? "n/a" : maxp), (maxt == "" ? "n/a" : maxt) }' "$1"
}

# ---- --timeline-compare: this script once per server, then one plot ---------------------------------------------------
if ((COMPARE)); then
    COMPARE_DIR="$RESULTS_DIR/deploy-timeline-$STAMP"
    PNG="$RESULTS_DIR/deploy-timeline-$STAMP.png"
    SUMMARY_MD="$RESULTS_DIR/deploy-timeline-$STAMP.md"
    mkdir -p "$COMPARE_DIR"
    SERVERS=(reuseport nohandoff stock)
    declare -A RUN_STATUS=()
    child_args=(--tool timeline --mode "$MODE" --restarts "$RESTARTS" --connections "$CONNECTIONS" --streams "$STREAMS"
        --interval "$INTERVAL" --timeline-ms "$TIMELINE_MS" --stop-timeout "$STOP_TIMEOUT" --no-build)
    [[ -n "$EVERY" ]] && child_args+=(--every "$EVERY")
    ((H2C)) && child_args+=(--h2c)
    ((STEADY)) || child_args+=(--no-steady)
    [[ -n "$APP_ARGS" ]] && child_args+=(--app-args "$APP_ARGS")
    [[ -n "$REPLOT" ]] || cut -d' ' -f1-3 /proc/loadavg >"$COMPARE_DIR/loadavg-start"
    for server in "${SERVERS[@]}"; do
        if [[ -n "$REPLOT" ]]; then
            RUN_STATUS[$server]=$(cat "$COMPARE_DIR/$server/exit-status" 2>/dev/null || echo "?")
            continue
        fi
        log "=== --timeline-compare: $server ==="
        "$0" "${child_args[@]}" --server "$server" --logs-dir "$COMPARE_DIR/$server" &
        child=$!
        track_child "$child"
        status=0
        wait "$child" || status=$?
        untrack_child "$child"
        RUN_STATUS[$server]=$status
        echo "$status" >"$COMPARE_DIR/$server/exit-status" 2>/dev/null || true
        ((status <= 1)) || die "the $server run failed to set up (exit status $status)"
    done
    [[ -n "$REPLOT" ]] || cut -d' ' -f1-3 /proc/loadavg >"$COMPARE_DIR/loadavg-end"

    # Per server: totals of both phases, steady medians of the per-interval figures, and the restart events.
    interval_s=$(awk -v m="$TIMELINE_MS" 'BEGIN { printf "%.3f", m / 1000 }')
    kv() { [[ -f "$1" ]] || { echo n/a; return; }; awk -F= -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "n/a" }' "$1"; }
    # median of column $2 of TSV $1 over full-length intervals with responses
    column_median() {
        [[ -f "$1" ]] || { echo n/a; return; }
        awk -F'\t' -v c="$2" -v len="$interval_s" 'NR > 1 && $3 >= 0.9 * len && $4 > 0 && $c != "NaN" { print $c }' "$1" | median
    }
    {
        echo "# Deploy timeline: $RESTARTS rolling restarts per server, $MODE$( ((H2C)) && echo " (h2c)"), LoadTimeline with $CONNECTIONS connections$([[ $MODE == h2 ]] && echo " x $STREAMS streams")"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores shared by the load generator and the servers, Linux $(uname -r),"
        echo "tcp_migrate_req=$MIGRATE_NOW, load average $(cat "$COMPARE_DIR/loadavg-start" 2>/dev/null || echo n/a) before and $(cat "$COMPARE_DIR/loadavg-end" 2>/dev/null || echo n/a) after the runs;"
        echo "$([[ -n "$EVERY" ]] && echo "a restart every ${EVERY}s" || echo "${INTERVAL}s of load between restarts"), ${TIMELINE_MS} ms intervals. The servers, one after the other on a new port each:"
        echo
        echo "- reuseport: sample/WebApp (Release); start the new instance, wait until it is ready, SIGTERM the old one;"
        echo "- nohandoff: the same with \`--ReusePort:SocketHandoff=false\`;"
        echo "- stock: benchmark/StockWebApp (plain Kestrel); SIGTERM the old instance, wait for its exit, start the new one."
        echo
        echo '![deploy timeline](PNG_NAME)'
        echo
        echo "| server | requests | req/s restarts | req/s steady | ratio | errors (connect/read/write/timeout) | non-2xx | p99 ms restarts | p99 ms steady | ratio | worst interval: p99 ms | lowest req/s | seconds without a response | exit |"
        echo "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for server in "${SERVERS[@]}"; do
            d="$COMPARE_DIR/$server"
            r="$d/restarts.tsv.summary"
            s="$d/steady.tsv.summary"
            read -r _ _ _ gap low _ worst _ <<<"$(timeline_stats "$d/restarts.tsv" "$d/events.tsv" 2>/dev/null || echo "0 0 0 n/a n/a 0 n/a 0")"
            echo "| $server | $(kv "$r" requests) | $(kv "$r" rps) | $(kv "$s" rps) | $(ratio "$(kv "$r" rps)" "$(kv "$s" rps)") | $(kv "$r" errors) ($(kv "$r" errors_connect)/$(kv "$r" errors_read)/$(kv "$r" errors_write)/$(kv "$r" errors_timeout)) | $(kv "$r" non2xx) | $(kv "$r" p99_ms) | $(kv "$s" p99_ms) | $(ratio "$(kv "$r" p99_ms)" "$(kv "$s" p99_ms)") | $worst | $low | $gap | ${RUN_STATUS[$server]} |"
        done
        echo
        echo "Restarts: the whole restarts phase; steady: the same load for as long on one instance. Worst interval, lowest"
        echo "req/s and seconds without a response: over the ${TIMELINE_MS} ms intervals from the first restart on. The plot's"
        echo "dashed lines are the medians of the steady phase's intervals. Exit: rolling-restart.sh's status for that server"
        echo "(1: errors or a failed stop; never 1 for stock's errors). Each run's report.md, restarts.tsv, steady.tsv,"
        echo "events.tsv and logs: RUNS_DIR."
    } >"$SUMMARY_MD"

    if ensure_gnuplot; then
        # Shared y ranges per column, so that the servers compare at a glance.
        rps_max=$(cat "$COMPARE_DIR"/*/restarts.tsv "$COMPARE_DIR"/*/steady.tsv 2>/dev/null | awk -F'\t' '$5 ~ /^[0-9.]+$/ && $5 > m { m = $5 } END { print (m > 0 ? m * 1.1 : 1) }')
        p99_max=$(cat "$COMPARE_DIR"/*/restarts.tsv 2>/dev/null | awk -F'\t' '$14 ~ /^[0-9.]+$/ && $14 > m { m = $14 } END { print (m > 0 ? m * 1.5 : 10) }')
        p99_min=$(cat "$COMPARE_DIR"/*/restarts.tsv "$COMPARE_DIR"/*/steady.tsv 2>/dev/null | awk -F'\t' '$14 ~ /^[0-9.]+$/ && $14 > 0 && (m == 0 || $14 < m) { m = $14 } END { print (m > 0 ? m / 1.5 : 0.1) }')
        err_max=$(cat "$COMPARE_DIR"/*/restarts.tsv 2>/dev/null | awk -F'\t' '$10 ~ /^[0-9]+$/ && $10 + $11 > m { m = $10 + $11 } END { print (m > 0 ? m * 2 : 10) }')
        # one time axis for all: the longest restarts phase
        xmax=$(cat "$COMPARE_DIR"/*/restarts.tsv 2>/dev/null | awk -F'\t' '$1 ~ /^[0-9.]+$/ && $1 + $3 > m { m = $1 + $3 } END { print m + 0 }')
        GP="$WORK_DIR/deploy-timeline.gp"
        {
            echo "set terminal pngcairo size 1800,$((380 * ${#SERVERS[@]} + 80)) font 'sans,10' noenhanced"
            echo "set output '$PNG'"
            echo "set datafile separator tab"
            title="Deploy timeline: $RESTARTS rolling restarts on one port, $MODE$( ((H2C)) && echo " h2c"), $CONNECTIONS connections$([[ $MODE == h2 ]] && echo " x $STREAMS streams"), $([[ -n "$EVERY" ]] && echo "a restart every ${EVERY}s" || echo "${INTERVAL}s between restarts"), ${TIMELINE_MS} ms intervals ($(nproc) cores shared by client and servers, $(date -u '+%Y-%m-%d'))"
            legend="vertical lines: grey = new instance started, green = new instance ready, red = SIGTERM to the old instance; blue dashed = median of the steady phase"
            printf 'set multiplot layout %d,3 title "%s\\n%s" font "sans,12"\n' "${#SERVERS[@]}" "$title" "$legend"
            echo "set grid"
            echo "set xlabel 'seconds since the load started'"
            echo "set key top right box opaque"
            echo "set style fill solid 0.9 noborder"
            echo "set boxwidth $interval_s absolute"
        } >"$GP"
        for server in "${SERVERS[@]}"; do
            d="$COMPARE_DIR/$server"
            t0=$(kv "$d/restarts.tsv.summary" start_epoch)
            [[ "$t0" != n/a && -f "$d/restarts.tsv" ]] || { log "no timeline for $server: skipped in the plot"; continue; }
            steady_rps=$(column_median "$d/steady.tsv" 5)
            steady_p99=$(column_median "$d/steady.tsv" 14)
            steady_rps_label=$(awk -v v="$steady_rps" 'BEGIN { if (v == "n/a") print v; else printf "%.0f", v }')
            steady_p99_label=$(awk -v v="$steady_p99" 'BEGIN { if (v == "n/a") print v; else printf "%.2f", v }')
            errors_total=$(kv "$d/restarts.tsv.summary" errors)
            {
                echo "unset arrow"
                # events.tsv columns 12-15: new instance started, ready, SIGTERM sent to the old one, old one exited
                awk -F'\t' -v t0="$t0" 'NR > 1 && NF >= 15 {
                    printf "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb \"#444444\" lw 1.2 dt 3 back\n", $12 - t0, $12 - t0
                    printf "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb \"#2ca02c\" lw 1 dt 2 back\n", $13 - t0, $13 - t0
                    printf "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb \"#d62728\" lw 1.2 back\n", $14 - t0, $14 - t0 }' "$d/events.tsv"
                echo "set xrange [0:$xmax]"
                echo "unset logscale y"
                echo "set yrange [0:$rps_max]"
                echo "set ylabel 'requests/s'"
                echo "set title '$server: throughput per ${TIMELINE_MS} ms (steady median ${steady_rps_label} req/s)'"
                printf "plot '%s' skip 1 using 1:5 with steps lw 1.5 lc rgb '#1f77b4' title 'requests/s'" "$d/restarts.tsv"
                [[ "$steady_rps" != n/a ]] && printf ", %s with lines dt 2 lw 1.5 lc rgb '#1f3fbf' title 'steady median'" "$steady_rps"
                echo
                echo "set logscale y"
                echo "set yrange [$p99_min:$p99_max]"
                echo "set ylabel 'p99 ms (log)'"
                echo "set title '$server: p99 latency per interval (steady median ${steady_p99_label} ms)'"
                printf "plot '%s' skip 1 using 1:14 with steps lw 1.5 lc rgb '#ff7f0e' title 'p99'" "$d/restarts.tsv"
                [[ "$steady_p99" != n/a ]] && printf ", %s with lines dt 2 lw 1.5 lc rgb '#1f3fbf' title 'steady median'" "$steady_p99"
                echo
                echo "set yrange [0.8:$err_max]"
                echo "set ylabel 'errors per interval (log)'"
                echo "set title '$server: errors per interval (total $errors_total; non-2xx $(kv "$d/restarts.tsv.summary" non2xx))'"
                # stacked: timeout on top of write on top of read on top of connect, then non-2xx
                printf "plot '%s' skip 1 using (\$1+%s/2):(\$10+\$11) with boxes lc rgb '#9467bd' title 'non-2xx', " "$d/restarts.tsv" "$interval_s"
                printf "'' skip 1 using (\$1+%s/2):10 with boxes lc rgb '#8c564b' title 'timeout', " "$interval_s"
                printf "'' skip 1 using (\$1+%s/2):(\$6+\$7+\$8) with boxes lc rgb '#e377c2' title 'write', " "$interval_s"
                printf "'' skip 1 using (\$1+%s/2):(\$6+\$7) with boxes lc rgb '#d62728' title 'read/reset', " "$interval_s"
                printf "'' skip 1 using (\$1+%s/2):6 with boxes lc rgb '#ff9896' title 'connect'\n" "$interval_s"
                echo "unset logscale y"
            } >>"$GP"
        done
        echo "unset multiplot" >>"$GP"
        if gnuplot "$GP" 2>"$WORK_DIR/gnuplot.err"; then
            cp "$GP" "$COMPARE_DIR/deploy-timeline.gp"
            log "plot: $PNG"
        else
            cat "$WORK_DIR/gnuplot.err" >&2
            log "gnuplot failed: no plot (script kept in $COMPARE_DIR/deploy-timeline.gp)"
            cp "$GP" "$COMPARE_DIR/deploy-timeline.gp"
        fi
    else
        log "gnuplot is not available and could not be installed (apt-get install gnuplot-nox): no plot"
    fi

    sed "s|PNG_NAME|deploy-timeline-$STAMP.png|; s|RUNS_DIR|\`deploy-timeline-$STAMP/<server>/\`|" "$SUMMARY_MD" >"$SUMMARY_MD.tmp" && mv "$SUMMARY_MD.tmp" "$SUMMARY_MD"
    echo
    cat "$SUMMARY_MD"
    echo
    if ((PUBLISH)); then
        sed "s|deploy-timeline-$STAMP.png|deploy-timeline.png|; s|\`deploy-timeline-$STAMP/<server>/\`|\`results/deploy-timeline-$STAMP/<server>/\` (not in git)|" "$SUMMARY_MD" >"$LOAD_DIR/deploy-timeline.md"
        [[ -f "$PNG" ]] && cp "$PNG" "$LOAD_DIR/deploy-timeline.png"
        log "published: benchmark/load/deploy-timeline.md$([[ -f "$PNG" ]] && echo " and deploy-timeline.png")"
    fi
    log "results: $SUMMARY_MD, $COMPARE_DIR/"
    if [[ "${RUN_STATUS[reuseport]}" != 0 ]]; then
        log "FAILED: the reuseport run had socket errors, non-2xx responses or failed stops (see its report)"
        exit 1
    fi
    exit 0
fi

# ---- one run ---------------------------------------------------------------------------------------------------------
if [[ -n "$FORCED_LOGS_DIR" ]]; then
    LOGS_DIR=$FORCED_LOGS_DIR
else
    LOGS_DIR="$RESULTS_DIR/rolling-restart-$STAMP-$MODE-migrate$MIGRATE_NOW"
    [[ "$SERVER" == reuseport ]] || LOGS_DIR+="-$SERVER"
fi
mkdir -p "$LOGS_DIR"
EVENTS="$WORK_DIR/events.tsv"
printf 'restart\tnew_pid\tready_s\ttaken_over\told_pid\told_conns\tnew_conns\tstop_s\told_exit\tkilled\tdrain\tstarted_at\tready_at\tsigterm_at\texited_at\n' >"$EVENTS"

# What every instance runs, and with what: the server's app, its options, and the protocol's.
SERVER_DLL=$REUSEPORT_DLL
SERVER_ARGS=()
case "$SERVER" in
    nohandoff) SERVER_ARGS=(--ReusePort:SocketHandoff=false) ;;
    stock) SERVER_DLL=$STOCK_DLL ;;
esac
SCHEME=http
if [[ "$MODE" == h2 ]]; then
    if ((H2C)); then
        SERVER_ARGS+=(--Kestrel:EndpointDefaults:Protocols=Http2)
    else
        SCHEME=https
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
            -keyout "$WORK_DIR/key.pem" -out "$WORK_DIR/cert.pem" >"$WORK_DIR/openssl.log" 2>&1 || { cat "$WORK_DIR/openssl.log" >&2; die "openssl could not make a certificate"; }
        SERVER_ARGS+=(--Kestrel:Certificates:Default:Path="$WORK_DIR/cert.pem" --Kestrel:Certificates:Default:KeyPath="$WORK_DIR/key.pem")
    fi
fi

INSTANCE=0
INSTANCE_PID=""
INSTANCE_LOG=""

# Starts instance number INSTANCE+1 on ${1:-$PORT} and waits (at most 30 s) until its host has started; sets INSTANCE_PID,
# INSTANCE_LOG, READY_SECONDS, and INSTANCE_STARTED_AT / INSTANCE_READY_AT (Unix time). With another instance running,
# curl cannot tell the two apart, so readiness is read from the new instance's own log: "Application started" comes
# after Kestrel bound and started accepting.
start_instance() {
    local port=${1:-$PORT} start=$EPOCHREALTIME deadline
    INSTANCE=$((INSTANCE + 1))
    INSTANCE_LOG="$WORK_DIR/instance-$INSTANCE.log"
    INSTANCE_STARTED_AT=$start
    dotnet "$SERVER_DLL" --contentRoot "${SERVER_DLL%/*}" --urls "$SCHEME://127.0.0.1:$port" "${SERVER_ARGS[@]}" "${EXTRA_ARGS[@]}" >"$INSTANCE_LOG" 2>&1 &
    INSTANCE_PID=$!
    track_child "$INSTANCE_PID"
    deadline=$((SECONDS + 30))
    until grep -q 'Application started' "$INSTANCE_LOG" 2>/dev/null; do
        kill -0 "$INSTANCE_PID" 2>/dev/null || { cat "$INSTANCE_LOG" >&2; die "instance $INSTANCE (pid $INSTANCE_PID) exited during start-up"; }
        ((SECONDS < deadline)) || { cat "$INSTANCE_LOG" >&2; die "instance $INSTANCE did not start within 30 s"; }
        sleep 0.02
    done
    INSTANCE_READY_AT=$EPOCHREALTIME
    READY_SECONDS=$(awk -v a="$start" -v b="$INSTANCE_READY_AT" 'BEGIN { printf "%.2f", b - a }')
}

# Established connections on $PORT owned by process $1 and by process $2 (server side, from ss -p).
connections_of() {
    ss -Htnp state established "( sport = :$PORT )" 2>/dev/null |
        awk -v a="pid=$1," -v b="pid=$2," '{ if (index($0, a)) x++; else if (index($0, b)) y++ } END { printf "%d %d\n", x, y }'
}

LOAD_PID=""
LOAD_SECONDS=0
# Starts the load generator in the background on $1 for at most $2 seconds, output to $3 (and, for the timeline, its
# per-interval TSV to $4); stopped early by stop_load: SIGINT for wrk and bombardier (both print their report on it),
# SIGTERM for LoadTimeline (a background job of a script ignores SIGINT, and .NET keeps it ignored); h2load is left to
# end by itself (it prints nothing when stopped).
start_load() {
    local url=$1 seconds=$2 out=$3 tsv=${4:-} header=()
    LOAD_SECONDS=$seconds
    [[ "$MODE" == churn ]] && header=(-H 'Connection: close')
    case "$TOOL" in
        wrk) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency --timeout 2s "${header[@]}" "$url" >"$out" 2>&1 & ;;
        bombardier) bombardier -c "$CONNECTIONS" -d "${seconds}s" -l -p r --timeout 2s "${header[@]}" "$url" >"$out" 2>&1 & ;;
        h2load) h2load -c "$CONNECTIONS" -m "$STREAMS" -D "$seconds" -N 2 --log-file="$out.tsv" "$url" >"$out" 2>&1 & ;;
        timeline)
            dotnet "$TIMELINE_DLL" --url "$url" --mode "$MODE" --connections "$CONNECTIONS" --streams "$STREAMS" \
                --duration "$seconds" --interval-ms "$TIMELINE_MS" --timeout-ms 2000 --out "$tsv" >"$out" 2>&1 & ;;
    esac
    LOAD_PID=$!
    track_child "$LOAD_PID"
}

stop_load() {
    local deadline=$((SECONDS + 20))
    case "$TOOL" in
        h2load) deadline=$((SECONDS + LOAD_SECONDS + 30)) ;;
        timeline) kill -TERM "$LOAD_PID" 2>/dev/null || true ;;
        *) kill -INT "$LOAD_PID" 2>/dev/null || true ;;
    esac
    while kill -0 "$LOAD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    if kill -0 "$LOAD_PID" 2>/dev/null; then kill -KILL "$LOAD_PID" 2>/dev/null || true; fi
    wait "$LOAD_PID" 2>/dev/null || true
    untrack_child "$LOAD_PID"
}

# --tool h2load, restarts phase: starts a fresh h2load against the running instance $1 (pid) for restart $2, and waits
# until its connections are established there, so the restart drains a loaded instance.
H2LOAD_PID=""
start_h2load_for_restart() {
    local pid=$1 restart=$2 deadline=$((SECONDS + 20)) mine
    h2load -c "$CONNECTIONS" -m "$STREAMS" -n 1000000000 --log-file="$WORK_DIR/h2load-$restart.tsv" "$URL" >"$WORK_DIR/h2load-$restart.out" 2>&1 &
    H2LOAD_PID=$!
    track_child "$H2LOAD_PID"
    while :; do
        read -r mine _ <<<"$(connections_of "$pid" 0)"
        ((mine >= CONNECTIONS)) && break
        ((SECONDS < deadline)) && running "$H2LOAD_PID" || { cat "$WORK_DIR/h2load-$restart.out" >&2; die "h2load $restart did not connect"; }
        sleep 0.02
    done
}

# Waits for restart $1's h2load to end by itself (GOAWAY on every connection), at most 30 s (then SIGKILL, and the
# restart counts as failed), and appends "restart streams failed non-2xx seconds" to $WORK_DIR/h2load-restarts.tsv.
finish_h2load_for_restart() {
    local restart=$1 deadline=$((SECONDS + 30)) status=0
    while running "$H2LOAD_PID" && ((SECONDS < deadline)); do sleep 0.02; done
    if running "$H2LOAD_PID"; then
        log "h2load $restart did not end within 30 s of the old instance's exit: SIGKILL"
        kill -KILL "$H2LOAD_PID" 2>/dev/null || true
        status=1
    fi
    wait "$H2LOAD_PID" 2>/dev/null || status=$?
    untrack_child "$H2LOAD_PID"
    awk -F'\t' -v r="$restart" -v st="$status" -v secs="$(awk '/^finished in/ { v = $3; s = v + 0; if (v ~ /ms,?$/) s /= 1000; else if (v ~ /us,?$/) s /= 1e6; print s }' "$WORK_DIR/h2load-$restart.out")" '
        NF >= 2 { n++; if ($2 == -1) f++; else if ($2 < 200 || $2 > 299) bad++ }
        END { printf "%d\t%d\t%d\t%d\t%s\n", r, n, f + (st != 0), bad, (secs == "" ? 0 : secs) }' "$WORK_DIR/h2load-$restart.tsv" >>"$WORK_DIR/h2load-restarts.tsv"
}

# The restarts phase of --tool h2load in the fields of parse_wrk, from h2load-restarts.tsv: streams per second of
# h2load's own running time, streams, failed streams (as read errors), non-2xx.
parse_h2load_restarts() {
    awk -F'\t' '{ n += $2; f += $3; bad += $4; secs += $5 } END { printf "%d %d n/a n/a n/a 0 %d 0 0 %d\n", (secs > 0 ? n / secs : 0), n, f, bad }' "$1"
}

# h2load's summary in the fields of parse_wrk. It prints no latency percentiles (only min/max/mean/sd): n/a. Its
# "errored" requests (network-level, including timeouts and failed connections) go to read, "timeout" to timeout.
parse_h2load() {
    awk '
        /^finished in/ { rps = $4 }
        /^requests:/ { for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^errored/) errored = $i; if ($(i + 1) ~ /^timeout/) to = $i } }
        /^status codes:/ { for (i = 3; i <= NF; i++) { v = $i; if ($(i + 1) ~ /^2xx/) ok = v + 0; else if ($(i + 1) ~ /^[345]xx/) bad += v } }
        END { printf "%s %d n/a n/a n/a 0 %d 0 %d %d\n", (rps == "" ? 0 : rps), ok + bad, errored - to, to, bad }
    ' "$1"
}

# LoadTimeline's FILE.summary in the fields of parse_wrk.
parse_timeline() {
    awk -F= '{ v[$1] = $2 } END {
        printf "%s %s %s %s %s %s %s %s %s %s\n", v["rps"] + 0, v["requests"] + 0, v["p50_ms"], v["p90_ms"], v["p99_ms"],
            v["errors_connect"] + 0, v["errors_read"] + 0, v["errors_write"] + 0, v["errors_timeout"] + 0, v["non2xx"] + 0 }' "$1"
}

parse_load() {
    case "$TOOL" in
        wrk) parse_wrk "$1" ;;
        bombardier) parse_bombardier "$1" ;;
        h2load) parse_h2load "$1" ;;
        timeline) parse_timeline "$2.summary" ;;
    esac
}

# ---- phase 1: rolling restarts under load -------------------------------------------------------------------------
PORT=$(free_port)
URL="$SCHEME://127.0.0.1:$PORT/"
((SQUATTERS)) && start_squatter
case "$SERVER" in
    reuseport) HOW="rolling restarts" ;;
    nohandoff) HOW="rolling restarts without socket handoff" ;;
    stock) HOW="stop-then-start restarts of stock Kestrel" ;;
esac
PHASE="$RESTARTS $HOW"
((CONTROL)) && PHASE="$RESTARTS bystander starts (control)"
log "$PHASE: on $URL, $MODE load ($TOOL, $CONNECTIONS connections$([[ $MODE == h2 ]] && echo " x $STREAMS streams")), tcp_migrate_req=$MIGRATE_NOW${APP_ARGS:+, app args: $APP_ARGS}"
start_instance
log "instance 1 (pid $INSTANCE_PID) ready in ${READY_SECONDS}s: $(grep -o 'Listening on .*' "$INSTANCE_LOG" | head -1 || true)"
drive_seconds=$(awk -v n="$RESTARTS" -v s="$STOP_TIMEOUT" -v i="$INTERVAL" -v e="${EVERY:-0}" 'BEGIN { printf "%d\n", (n + 1) * (s + 30 + i + e) + 60 }')   # an upper bound only: stopped by stop_load
START_PHASE=$EPOCHREALTIME
if [[ "$TOOL" == h2load ]]; then
    : >"$WORK_DIR/h2load-restarts.tsv"   # a fresh h2load per restart, started in the loop
else
    start_load "$URL" "$drive_seconds" "$WORK_DIR/restarts.out" "$WORK_DIR/restarts.tsv"
fi
sleep "$INTERVAL"
NEXT_START=$EPOCHREALTIME
LATE_STARTS=0

FAILED_STOPS=0
for ((restart = 1; restart <= RESTARTS; restart++)); do
    if [[ -n "$EVERY" ]]; then
        wait_s=$(seconds_until "$NEXT_START")
        if [[ "$wait_s" == 0.000 ]] && ((restart > 1)); then
            LATE_STARTS=$((LATE_STARTS + 1))
            log "restart $restart starts late: the previous one took longer than --every ${EVERY}s"
        else
            sleep "$wait_s"
        fi
        NEXT_START=$(awk -v a="$NEXT_START" -v e="$EVERY" 'BEGIN { printf "%.6f", a + e }')
    fi
    if ((CONTROL)); then
        serving_pid=$INSTANCE_PID
        serving_log=$INSTANCE_LOG
        start_instance "$(free_port)"
    fi
    old_pid=$INSTANCE_PID
    old_log=$INSTANCE_LOG
    [[ "$TOOL" == h2load ]] && start_h2load_for_restart "$old_pid" "$restart"
    if [[ "$SERVER" == stock ]] && ((CONTROL == 0)); then
        # stop-then-start: the port refuses connections from the SIGTERM until the new instance listens
        read -r old_conns new_conns <<<"$(connections_of "$old_pid" 0)"
        stop_process "$old_pid" "$STOP_TIMEOUT"
        start_instance
    else
        ((CONTROL)) || start_instance
        read -r old_conns new_conns <<<"$(connections_of "$old_pid" "$INSTANCE_PID")"
        stop_process "$old_pid" "$STOP_TIMEOUT"
    fi
    taken=$(grep -o '([0-9]* taken over' "$INSTANCE_LOG" | head -1 | tr -dc '0-9' || true)
    drain=$(grep -o 'Drain ended after [0-9]* ms with [0-9]* connections still open' "$old_log" | head -1 | sed -E 's/Drain ended after ([0-9]+) ms with ([0-9]+) .*/\1 ms, \2 left/' || true)
    if ((STOP_KILLED)) || ((STOP_STATUS != 0)); then FAILED_STOPS=$((FAILED_STOPS + 1)); fi
    if [[ "$TOOL" == h2load ]]; then
        finish_h2load_for_restart "$restart"
        log "restart $restart: h2load $(tail -1 "$WORK_DIR/h2load-restarts.tsv" | awk -F'\t' '{ printf "%d streams, %d failed, %d non-2xx", $2, $3, $4 }')"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$restart" "$INSTANCE_PID" "$READY_SECONDS" "${taken:-0}" "$old_pid" "$old_conns" "$new_conns" "$STOP_SECONDS" "$STOP_STATUS" "$STOP_KILLED" "${drain:-none}" \
        "$INSTANCE_STARTED_AT" "$INSTANCE_READY_AT" "$STOP_SENT_AT" "$STOP_EXITED_AT" >>"$EVENTS"
    log "restart $restart/$RESTARTS: pid $INSTANCE_PID ready in ${READY_SECONDS}s (${taken:-0} sockets taken over); connections before SIGTERM: old $old_conns, new $new_conns; pid $old_pid exited ${STOP_STATUS} after ${STOP_SECONDS}s (drain: ${drain:-none})"
    if ((CONTROL)); then
        INSTANCE_PID=$serving_pid
        INSTANCE_LOG=$serving_log
    fi
    [[ -n "$EVERY" ]] || sleep "$INTERVAL"
done
# with --every, the last restart gets its whole window of load too
[[ -n "$EVERY" ]] && sleep "$(seconds_until "$NEXT_START")"
[[ "$TOOL" == h2load ]] || stop_load
PHASE_SECONDS=$(awk -v a="$START_PHASE" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a + 0.5 }')
stop_process "$INSTANCE_PID" "$STOP_TIMEOUT"
if [[ "$TOOL" == h2load ]]; then
    read -r R_RPS R_REQ R_P50 R_P90 R_P99 R_CON R_READ R_WRITE R_TMO R_NON2XX <<<"$(parse_h2load_restarts "$WORK_DIR/h2load-restarts.tsv")"
else
    read -r R_RPS R_REQ R_P50 R_P90 R_P99 R_CON R_READ R_WRITE R_TMO R_NON2XX <<<"$(parse_load "$WORK_DIR/restarts.out" "$WORK_DIR/restarts.tsv")"
fi

# ---- phase 2: the same load for as long, without restarts ----------------------------------------------------------
if ((STEADY)); then
    PORT=$(free_port)
    URL="$SCHEME://127.0.0.1:$PORT/"
    log "steady state: ${PHASE_SECONDS}s of the same load on $URL, no restarts"
    start_instance
    start_load "$URL" "$PHASE_SECONDS" "$WORK_DIR/steady.out" "$WORK_DIR/steady.tsv"
    deadline=$((SECONDS + PHASE_SECONDS + 30))
    while kill -0 "$LOAD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    stop_load
    stop_process "$INSTANCE_PID" "$STOP_TIMEOUT"
    read -r S_RPS S_REQ S_P50 S_P90 S_P99 S_CON S_READ S_WRITE S_TMO S_NON2XX <<<"$(parse_load "$WORK_DIR/steady.out" "$WORK_DIR/steady.tsv")"
fi

# ---- report --------------------------------------------------------------------------------------------------------
cp "$WORK_DIR"/*.log "$WORK_DIR"/*.out "$WORK_DIR"/*.tsv "$WORK_DIR"/*.summary "$LOGS_DIR/" 2>/dev/null || true
rm -f "$LOGS_DIR/build.log" "$LOGS_DIR/build-timeline.log" "$LOGS_DIR/openssl.log"
problems=$(grep -hE '^(warn|fail|crit):' "$WORK_DIR"/instance-*.log | sort | uniq -c | sort -rn | head -20 || true)
handoffs=$(awk -F'\t' 'NR > 1 && $4 > 0' "$EVENTS" | wc -l)
ready_median=$(awk -F'\t' 'NR > 1 { print $3 }' "$EVENTS" | median)
stop_median=$(awk -F'\t' 'NR > 1 { print $8 }' "$EVENTS" | median)
stop_max=$(awk -F'\t' 'NR > 1 { print $8 }' "$EVENTS" | sort -g | tail -1)
# stock: from SIGTERM to the new instance's readiness, the port refused connections
gap_median=$(awk -F'\t' 'NR > 1 { print $13 - $14 }' "$EVENTS" | median)
P99_RATIO=n/a
RPS_RATIO=n/a
if ((STEADY)); then
    P99_RATIO=$(ratio "$R_P99" "$S_P99")
    RPS_RATIO=$(ratio "$R_RPS" "$S_RPS")
fi
REPORT="$LOGS_DIR/report.md"
{
    echo "# Rolling restarts$( ((CONTROL)) && echo " (control: bystander instances on another port)"): $SERVER, $MODE$( ((H2C)) && echo " (h2c)"), tcp_migrate_req=$MIGRATE_NOW"
    echo
    case "$SERVER" in
        reuseport) what="sample/WebApp (Release), start the new instance, then SIGTERM the old one" ;;
        nohandoff) what="sample/WebApp (Release) with --ReusePort:SocketHandoff=false, start the new instance, then SIGTERM the old one" ;;
        stock) what="benchmark/StockWebApp (Release, stock Kestrel), stop-then-start: SIGTERM the old instance, wait for its exit, start the new one" ;;
    esac
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r). $RESTARTS restarts on one port: $what; $([[ -n "$EVERY" ]] && echo "a restart every ${EVERY}s" || echo "${INTERVAL}s of load between restarts"). $TOOL with $CONNECTIONS connections$([[ $MODE == churn ]] && echo ", -H 'Connection: close'")$([[ $MODE == h2 ]] && echo " x $STREAMS streams, HTTP/2 $( ((H2C)) && echo "cleartext (h2c)" || echo "over TLS")")${APP_ARGS:+, app args: $APP_ARGS}."
    if [[ "$SERVER" == stock ]]; then
        echo "Restarts: stop-then-start; SIGTERM to exit median ${stop_median}s, max ${stop_max:-0}s; new instance start-up median ${ready_median}s; port closed (SIGTERM to new instance ready) median ${gap_median}s; $FAILED_STOPS stops failed or were killed."
    else
        echo "Restarts: $handoffs of $RESTARTS new instances took the sockets over; start-up median ${ready_median}s; SIGTERM to exit median ${stop_median}s, max ${stop_max:-0}s; $FAILED_STOPS stops failed or were killed."
    fi
    ((LATE_STARTS == 0)) || echo "$LATE_STARTS restarts started late: the previous one took longer than --every ${EVERY}s."
    echo
    echo "| phase | seconds | requests | req/s | socket errors connect | read | write | timeout | non-2xx | p50 ms | p90 ms | p99 ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    echo "| $PHASE | $PHASE_SECONDS | $R_REQ | $R_RPS | $R_CON | $R_READ | $R_WRITE | $R_TMO | $R_NON2XX | $R_P50 | $R_P90 | $R_P99 |"
    ((STEADY)) && echo "| steady state | $PHASE_SECONDS | $S_REQ | $S_RPS | $S_CON | $S_READ | $S_WRITE | $S_TMO | $S_NON2XX | $S_P50 | $S_P90 | $S_P99 |"
    echo
    if ((STEADY)); then
        echo "During restarts against steady state: p99 ${P99_RATIO} (${R_P99} / ${S_P99} ms), throughput ${RPS_RATIO} (${R_RPS} / ${S_RPS} req/s)."
        [[ "$TOOL" == h2load ]] && echo "h2load prints no latency percentiles (only min, max, mean and sd of the request time; see steady.out)."
        echo
    fi
    if [[ "$TOOL" == timeline && -f "$WORK_DIR/restarts.tsv" ]]; then
        read -r t_n t_err t_zero t_zero_s t_min t_min_at t_p99 t_p99_at <<<"$(timeline_stats "$WORK_DIR/restarts.tsv" "$EVENTS")"
        echo "Timeline (restarts.tsv, ${TIMELINE_MS} ms intervals), from the first restart on ($t_n intervals): $t_err with errors; $t_zero (${t_zero_s} s) without a completed request; lowest throughput $t_min req/s (at ${t_min_at} s); highest p99 $t_p99 ms (at ${t_p99_at} s)."
        echo
    fi
    if [[ "$TOOL" == h2load ]]; then
        echo "h2load, a fresh one per restart (it does not reconnect after GOAWAY), loading the old instance until it drained: streams counted from its per-request log (h2load-N.tsv); a failed stream (status -1) is counted under read errors. Per restart (h2load-restarts.tsv: restart, streams, failed, non-2xx, seconds):"
        echo '```'
        awk -F'\t' '{ printf "restart %d: %d streams, %d failed, %d non-2xx in %.2f s\n", $1, $2, $3, $4, $5 }' "$WORK_DIR/h2load-restarts.tsv"
        echo '```'
        echo "Its throughput counts only the seconds each h2load ran (a connection's load ends at its GOAWAY), so the throughput ratio is rough."
        echo
    fi
    if [[ -n "$problems" ]]; then
        echo "Warnings and errors logged by the instances (count, line):"
        echo '```'
        echo "$problems"
        echo '```'
    else
        echo "The instances logged no warning or error."
    fi
    echo
    echo "Per restart (events.tsv): restart, new pid, start-up s, sockets taken over, old pid, established connections of the old and the new instance just before SIGTERM (ss), SIGTERM-to-exit s, exit status, killed, drain, and the Unix times at which the new instance was started and ready, and the old one was sent SIGTERM and exited."
    if [[ "$TOOL" == timeline ]]; then echo "Timeline: restarts.tsv and steady.tsv, one row per ${TIMELINE_MS} ms interval (requests, req/s, errors by kind, non-2xx, p50/p90/p99/max ms), with .summary totals."; fi
} >"$REPORT"
echo
cat "$REPORT"
echo
log "logs, load-generator output and events: $LOGS_DIR"

# stock: the port is closed between SIGTERM and the new instance, so errors of the restarts phase are expected there
errors=$FAILED_STOPS
[[ "$SERVER" == stock ]] || errors=$((errors + R_CON + R_READ + R_WRITE + R_TMO + R_NON2XX))
((STEADY)) && errors=$((errors + S_CON + S_READ + S_WRITE + S_TMO + S_NON2XX))
if ((errors > 0)); then
    log "FAILED: socket errors, non-2xx responses or failed stops (see above)"
    exit 1
fi
if [[ "$SERVER" == stock ]]; then
    log "OK: every stop was clean; the restarts phase had $((R_CON + R_READ + R_WRITE + R_TMO)) socket errors and $R_NON2XX non-2xx responses (expected with stop-then-start)"
else
    log "OK: no socket error, no non-2xx response"
fi
