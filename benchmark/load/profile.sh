#!/usr/bin/env bash
# Where a request's CPU goes: the cost of one request in server CPU time (user and kernel), context switches, the
# server's threads and the whole machine, for stock Kestrel, Kestrel.ReusePort and nginx, under the same wrk load as
# compare.sh. Configurations take turns and every figure is the median over the rounds. With --perf it also samples
# the .NET servers with perf and splits their CPU time by code path (accept path, send, shutdown, epoll, scheduler),
# which bounds what any change to the accept path alone can gain.
#
# Usage: benchmark/load/profile.sh [options]
#   --rounds N          rounds of every configuration (default 3)
#   --duration D        measured time of one wrk run (default 10s)
#   --warmup D          unmeasured wrk run first (default 5s: the JIT's tier-up must be over)
#   --connections C     wrk -c (default 32)
#   --configs LIST      as compare.sh (default stock,reuseport,nginx; nginx only when installed)
#   --mode M            churn (Connection: close, default) or keepalive
#   --app-args "ARGS"   extra arguments for the .NET apps, e.g. "--SocketTransport:IOQueueCount=0"
#   --perf              also record one perf profile of each .NET configuration (needs perf)
#   --no-build          use the existing Release builds
#   --no-publish        leave profile.md alone; write only under results/
# Writes results/profile-<date>.md, prints it and, unless --no-publish, copies it to profile.md.
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=3
DURATION=10s
WARMUP=5s
CONNECTIONS=32
CONFIGS=""
MODE=churn
APP_ARGS=""
PERF=0
BUILD=1
PUBLISH=1

while (($#)); do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --configs) CONFIGS=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --app-args) APP_ARGS=$2; shift 2 ;;
        --perf) PERF=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-publish) PUBLISH=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$MODE" =~ ^(churn|keepalive)$ ]] || die "--mode must be churn or keepalive"

require dotnet wrk curl ss awk sort
((PERF)) && require perf
WORK_DIR=$(mktemp -d /tmp/kestrel-reuseport-profile.XXXXXX)
trap cleanup_children EXIT
trap 'exit 130' INT TERM

select_configs "$CONFIGS"
read -r -a APP_ARG_LIST <<<"$APP_ARGS"

((BUILD)) && build_apps
[[ -f "$REUSEPORT_DLL" && -f "$STOCK_DLL" ]] || die "Release builds missing; run without --no-build"

HEADER=()
[[ "$MODE" == churn ]] && HEADER=(-H 'Connection: close')
HZ=$(getconf CLK_TCK)
STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS_DIR="$LOAD_DIR/results"
mkdir -p "$RESULTS_DIR"
REPORT="$RESULTS_DIR/profile-$STAMP.md"
RAW="$WORK_DIR/raw.tsv"

# The server and its children (nginx workers).
server_pids() { echo "$1" $(pgrep -P "$1" || true); }

# One line per thread: class, user ticks, system ticks, voluntary and nonvoluntary context switches. The class is the thread's name with digits and
# spaces folded (".NET TP Worker", ".NET Sockets", "nginx"), so that a thread pool that grew during the run still adds up.
thread_snapshot() {
    local pid task name
    for pid in $(server_pids "$1"); do
        for task in /proc/"$pid"/task/*; do
            name=$(tr -d '0-9' <"$task/comm" 2>/dev/null | tr ' ' '_') || continue
            # Fields after the ")" of the name: utime is the 12th, stime the 13th.
            printf '%s %s %s\n' "$name" \
                "$(sed 's/^.*) //' "$task/stat" 2>/dev/null | awk '{ print $12, $13 }')" \
                "$(awk '/^voluntary_ctxt_switches/ { v = $2 } /^nonvoluntary_ctxt_switches/ { n = $2 } END { print v + 0, n + 0 }' "$task/status" 2>/dev/null)"
        done
    done | awk 'NF == 5'
}

# user system idle softirq (ticks, whole machine) and the kernel's count of listen queue overflows.
machine_snapshot() {
    awk '/^cpu / { printf "%d %d %d %d ", $2 + $3, $4 + $7, $5 + $6, $8 }' /proc/stat
    awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) n[i] = $i; h = 1 } else for (i = 1; i <= NF; i++) if (n[i] == "ListenOverflows") print $i }' /proc/net/netstat
}

# Per-request figures of one run from the snapshots: appends one row to RAW.
record_run() {
    local config=$1 round=$2 wrk_out=$3 requests rps p99 errors
    read -r rps requests _ _ p99 connect read write timeout _ < <(parse_wrk "$wrk_out")
    errors=$((connect + read + write + timeout))
    [[ -n "$requests" && "$requests" -gt 0 ]] || { log "$config: wrk served nothing"; cat "$wrk_out" >&2; return 0; }
    # Threads are matched by class: a thread that started during the run counts from zero, one that ended is lost
    # (the runtime rarely retires threads within seconds).
    awk -v config="$config" -v round="$round" -v req="$requests" -v rps="$rps" -v p99="$p99" -v errors="$errors" -v hz="$HZ" -v m0="$(cat "$WORK_DIR/m0")" -v m1="$(cat "$WORK_DIR/m1")" '
        FNR == 1 { file++ }
        file == 1 { u0[$1] += $2; s0[$1] += $3; v0[$1] += $4; n0[$1] += $5; next }
        { u1[$1] += $2; s1[$1] += $3; v1[$1] += $4; n1[$1] += $5; seen[$1] = 1 }
        END {
            us = 1e6 / hz / req
            for (c in seen) { du = u1[c] - u0[c]; ds = s1[c] - s0[c]
                user += du; sys += ds; vol += v1[c] - v0[c]; nonvol += n1[c] - n0[c]; cls[c] = (du + ds) * us }
            split(m0, a, " "); split(m1, b, " ")
            line = sprintf("%s\t%s\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%d", config, round, rps, user * us, sys * us,
                vol / req, nonvol / req, (b[1] - a[1]) * us, (b[2] - a[2]) * us, (b[4] - a[4]) * us, (b[3] - a[3]) * us, b[5] - a[5])
            threads = ""
            for (c in cls) if (cls[c] >= 0.5) threads = threads sprintf("%s%s %.1f", threads == "" ? "" : ", ", c, cls[c])
            print line "\t" threads "\t" p99 "\t" errors
        }' "$WORK_DIR/t0" "$WORK_DIR/t1" >>"$RAW"
}

measure() {
    local config=$1 round=$2 port url
    port=$(free_port)
    start_server "$config" "$port" "${APP_ARG_LIST[@]}"
    url="http://127.0.0.1:$port/"
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "${HEADER[@]}" "$url" >/dev/null 2>&1 || true
    thread_snapshot "$SERVER_PID" >"$WORK_DIR/t0"
    machine_snapshot >"$WORK_DIR/m0"
    wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 2s "${HEADER[@]}" "$url" >"$WORK_DIR/wrk.txt" 2>&1 || true
    thread_snapshot "$SERVER_PID" >"$WORK_DIR/t1"
    machine_snapshot >"$WORK_DIR/m1"
    record_run "$config" "$round" "$WORK_DIR/wrk.txt"
    stop_process "$SERVER_PID" 15
    log "$config round $round: $(tail -1 "$RAW" | cut -f3) req/s"
}

log "configurations: ${CONFIG_LIST[*]}; mode $MODE; $ROUNDS rounds"
for ((round = 1; round <= ROUNDS; round++)); do
    for config in "${CONFIG_LIST[@]}"; do
        measure "$config" "$round"
    done
done

# Median of column $2 of configuration $1.
col_median() { awk -F'\t' -v c="$1" -v k="$2" '$1 == c { print $k }' "$RAW" | median; }

{
    echo "# Cost of one request: stock Kestrel vs Kestrel.ReusePort vs nginx"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r), .NET $(dotnet --version 2>/dev/null || echo '?')."
    echo "Load: wrk -t1 -c$CONNECTIONS -d$DURATION, $MODE$([[ "$MODE" == churn ]] && echo " (Connection: close)"); $ROUNDS rounds in turns, medians.${APP_ARGS:+ App arguments: \`$APP_ARGS\`.}"
    echo "CPU figures are microseconds of CPU time per request, from /proc; context switches are per request, over all the server's threads; socket errors and listen overflows (the kernel's count of connections dropped because an accept queue was full, machine-wide) are summed over the rounds."
    echo
    echo "| configuration | req/s | p99 ms | socket errors | server user µs | server kernel µs | server total µs | voluntary cs | involuntary cs | machine user µs | machine kernel µs | machine softirq µs | machine idle µs | listen overflows |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for config in "${CONFIG_LIST[@]}"; do
        user=$(col_median "$config" 4)
        sys=$(col_median "$config" 5)
        printf '| %s | %.0f | %.2f | %.0f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %.0f |\n' "$config" \
            "$(col_median "$config" 3)" "$(col_median "$config" 14)" "$(awk -F'\t' -v c="$config" '$1 == c { t += $15 } END { print t + 0 }' "$RAW")" "$user" "$sys" "$(awk -v a="$user" -v b="$sys" 'BEGIN { print a + b }')" \
            "$(col_median "$config" 6)" "$(col_median "$config" 7)" "$(col_median "$config" 8)" "$(col_median "$config" 9)" \
            "$(col_median "$config" 10)" "$(col_median "$config" 11)" "$(awk -F'\t' -v c="$config" '$1 == c { t += $12 } END { print t + 0 }' "$RAW")"
    done
    echo
    echo "Server CPU µs per request by thread (last round):"
    echo
    for config in "${CONFIG_LIST[@]}"; do
        echo "- $config: $(awk -F'\t' -v c="$config" '$1 == c { t = $13 } END { print t }' "$RAW")"
    done
} >"$REPORT"

# perf: one more run of each .NET configuration, sampled, with the JIT's symbol map. The rows are inclusive shares of
# the server's samples; a frame and the frames it calls are counted once.
if ((PERF)); then
    {
        echo
        echo "## Where the server's CPU time goes (perf, inclusive share of the server's samples)"
        echo
    } >>"$REPORT"
    PATHS=(
        "accept path: listener accept loop, from accept() to handing the connection to Kestrel|SocketConnectionListener\\+<AcceptAsync>d__[0-9]+::MoveNext|ReusePortConnectionListener\\+<AcceptLoopAsync>d__[0-9]+::MoveNext"
        "  of which accept4()|__sys_accept4"
        "  of which SocketConnection.Start (first receive, same code in both)|SocketConnection::Start\\(\\)"
        "send()|__sys_sendto"
        "shutdown()|__sys_shutdown"
        "recv()|__sys_recvfrom"
        "close()|__x64_sys_close"
        "epoll_wait()|do_epoll_wait"
        "epoll_ctl()|do_epoll_ctl"
        "scheduler (context switches)|\\] __schedule$"
        "all system calls|entry_SYSCALL_64_after_hwframe"
    )
    declare -A SHARES
    perf_configs=()
    for config in "${CONFIG_LIST[@]}"; do
        [[ "$config" == nginx ]] && continue
        perf_configs+=("$config")
        port=$(free_port)
        DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 start_server "$config" "$port" "${APP_ARG_LIST[@]}"
        url="http://127.0.0.1:$port/"
        wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "${HEADER[@]}" "$url" >/dev/null 2>&1 || true
        wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "${HEADER[@]}" "$url" >"$WORK_DIR/wrk-perf.txt" 2>&1 &
        wrk_pid=$!
        seconds=$(to_ms "$DURATION" | awk '{ printf "%d", $1 / 1000 - 2 }')
        perf record -F 999 -g -p "$SERVER_PID" -o "$WORK_DIR/perf-$config.data" -- sleep "$((seconds > 1 ? seconds : 1))" >/dev/null 2>&1 || true
        wait "$wrk_pid" || true
        perf report -i "$WORK_DIR/perf-$config.data" --children --sort sym -q -g none 2>/dev/null >"$WORK_DIR/perf-$config.txt" || true
        stop_process "$SERVER_PID" 15
        for entry in "${PATHS[@]}"; do
            label=${entry%%|*}
            pattern=${entry#*|}
            SHARES["$config|$label"]=$(grep -E "$pattern" "$WORK_DIR/perf-$config.txt" | awk '{ v = $1 + 0; if (v > m) m = v } END { printf "%.1f %%", m }')
        done
        log "perf $config: $(grep -c . "$WORK_DIR/perf-$config.txt") symbols"
    done
    {
        printf '| path |'; printf ' %s |' "${perf_configs[@]}"; echo
        printf '| --- |'; printf ' ---: |%.0s' "${perf_configs[@]}"; echo
        for entry in "${PATHS[@]}"; do
            label=${entry%%|*}
            printf '| %s |' "$label"
            for config in "${perf_configs[@]}"; do printf ' %s |' "${SHARES["$config|$label"]}"; done
            echo
        done
        echo
        # Everything but the accept loop is the same Kestrel code in both transports, and so is SocketConnection.Start
        # inside it: the rest of the loop is all a transport can change, and the most it can gain is what the machine
        # spends per request over that minus this part.
        for config in "${perf_configs[@]}"; do
            accept=${SHARES["$config|${PATHS[0]%%|*}"]% %}
            start=${SHARES["$config|${PATHS[2]%%|*}"]% %}
            awk -v c="$config" -v a="$accept" -v st="$start" -v u="$(col_median "$config" 4)" -v s="$(col_median "$config" 5)" \
                -v mu="$(col_median "$config" 8)" -v mk="$(col_median "$config" 9)" -v mi="$(col_median "$config" 10)" 'BEGIN {
                    own = (a - st) / 100 * (u + s); busy = mu + mk + mi
                    if (busy > own && busy > 0)
                        printf "- %s: the accept loop without SocketConnection.Start costs %.1f µs of the %.1f µs of server CPU and of the %.1f µs of busy machine per request; if it cost nothing, requests would be at most %.2fx as fast.\n", c, own, u + s, busy, busy / (busy - own) }'
        done
    } >>"$REPORT"
fi

cat "$REPORT"
log "report: ${REPORT#"$REPO_ROOT"/}"
if ((PUBLISH)); then
    cp "$REPORT" "$LOAD_DIR/profile.md"
    log "published: ${LOAD_DIR#"$REPO_ROOT"/}/profile.md"
fi
