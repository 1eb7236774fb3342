#!/usr/bin/env bash
# Throughput and latency of stock Kestrel (benchmark/StockWebApp) against Kestrel.ReusePort (sample/WebApp), and nginx
# with `listen ... reuseport` when it is installed, on loopback. Configurations take turns (A B C A B C ...), each on a
# fresh process and a free 127.0.0.1 port, and every figure is the median over the rounds; ratios are against stock
# Kestrel measured in the same run. Writes results/compare-<date>.md (+ .tsv, logs) and, unless --no-publish,
# copies the table to results.md and draws results.png.
#
# Usage: benchmark/load/compare.sh [options]
#   --rounds N          rounds of every configuration (default 3)
#   --duration D        measured time of one wrk run, wrk syntax (default 10s)
#   --warmup D          unmeasured wrk run before each measured one (default 3s)
#   --connections C     wrk -c (default 32)
#   --threads T         wrk -t (default 1; the machine has 2 cores and the server needs them)
#   --configs LIST      comma-separated, from: stock, reuseport (ListenerCount = cores), reuseport-N (ListenerCount N), reuseport-defer (DeferAccept 1 s),
#                       nginx (serving the reply itself, listen reuseport), nginx-proxy (nginx as a reverse proxy with upstream
#                       keep-alive in front of stock Kestrel: what users run for zero-downtime deploys without this library;
#                       no limit of requests per connection), nginx-proxy-defaults (the same with nginx's default
#                       keepalive_requests of 1000 on both sides, as its upstream keep-alive recipe leaves it), yarp-proxy
#                       (YARP 2.3, benchmark/YarpProxy, in front of stock Kestrel: the same blue/green setup built in .NET,
#                       HTTP/1.1 over pooled keep-alive connections to the backend)
#                       (default: stock,reuseport,nginx; nginx only when installed)
#   --base CONFIG       the configuration the ratios are against (default stock, else the first one)
#   --modes LIST        keepalive, churn (Connection: close) or both (default keepalive,churn)
#   --no-bombardier     do not also drive the servers with bombardier even when a real one is on PATH
#   --no-build          use the existing Release builds
#   --no-plot           do not draw the PNG
#   --no-publish        leave results.md and results.png alone; write only under results/
#   --keep-tmp          keep the temp dir (server logs and raw output are copied to results/ anyway)
# Default total time: 3 rounds x 3 configurations x 2 modes x (3 s + 10 s) + start/stop = about 4.5 minutes.
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=3
DURATION=10s
WARMUP=3s
CONNECTIONS=32
THREADS=1
CONFIGS=""
BASE_CONFIG=""
MODES="keepalive,churn"
USE_BOMBARDIER=1
BUILD=1
PLOT=1
PUBLISH=1

while (($#)); do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --configs) CONFIGS=$2; shift 2 ;;
        --base) BASE_CONFIG=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --no-bombardier) USE_BOMBARDIER=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-plot) PLOT=0; shift ;;
        --no-publish) PUBLISH=0; shift ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"

require dotnet wrk curl ss awk sort
WORK_DIR=$(mktemp -d /tmp/kestrel-reuseport-compare.XXXXXX)
trap cleanup_children EXIT
trap 'exit 130' INT TERM

select_configs "$CONFIGS"
IFS=, read -r -a MODE_LIST <<<"$MODES"
for mode in "${MODE_LIST[@]}"; do
    [[ "$mode" =~ ^(keepalive|churn)$ ]] || die "unknown mode $mode"
done

TOOLS=(wrk)
if ((USE_BOMBARDIER)) && real_bombardier; then
    TOOLS+=(bombardier)
fi

STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS_DIR="$LOAD_DIR/results"
mkdir -p "$RESULTS_DIR"
RAW="$RESULTS_DIR/compare-$STAMP.tsv"
REPORT="$RESULTS_DIR/compare-$STAMP.md"
PLOT_FILE="$RESULTS_DIR/compare-$STAMP.png"
printf 'round\tconfig\tmode\ttool\trps\trequests\tp50_ms\tp90_ms\tp99_ms\tconnect\tread\twrite\ttimeout\tnon2xx\n' >"$RAW"

((BUILD)) && build_apps
[[ -f "$REUSEPORT_DLL" && -f "$STOCK_DLL" ]] || die "Release builds missing; run without --no-build"

# One load run: tool $1, mode $2, URL $3, duration $4, output file $5.
drive() {
    local tool=$1 mode=$2 url=$3 duration=$4 out=$5 header=() seconds
    [[ "$mode" == churn ]] && header=(-H 'Connection: close')
    seconds=$(to_ms "$duration" | awk '{ printf "%d", $1 / 1000 + 0.999 }')
    case "$tool" in
        wrk) timeout $((seconds + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency --timeout 2s "${header[@]}" "$url" >"$out" 2>&1 || true ;;
        bombardier) timeout $((seconds + 60)) bombardier -c "$CONNECTIONS" -d "$duration" -l -p r --timeout 2s "${header[@]}" "$url" >"$out" 2>&1 || true ;;
    esac
}

mode_seconds=$(($(to_ms "$DURATION" | awk '{ printf "%d", $1 / 1000 }') + $(to_ms "$WARMUP" | awk '{ printf "%d", $1 / 1000 }')))
estimate=$((ROUNDS * ${#CONFIG_LIST[@]} * (${#MODE_LIST[@]} * ${#TOOLS[@]} * mode_seconds + 3)))
log "configurations: ${CONFIG_LIST[*]}; modes: ${MODE_LIST[*]}; tools: ${TOOLS[*]}; $ROUNDS rounds; about $((estimate / 60)) min $((estimate % 60)) s"

declare -A NOTES
for ((round = 1; round <= ROUNDS; round++)); do
    for config in "${CONFIG_LIST[@]}"; do
        port=$(free_port)
        start_server "$config" "$port"
        NOTES[$config]=$SERVER_NOTE
        url="http://127.0.0.1:$port/"
        for mode in "${MODE_LIST[@]}"; do
            for tool in "${TOOLS[@]}"; do
                drive "$tool" "$mode" "$url" "$WARMUP" "$WORK_DIR/warmup.out"
                out="$WORK_DIR/r$round-$config-$mode-$tool.out"
                drive "$tool" "$mode" "$url" "$DURATION" "$out"
                if [[ "$tool" == wrk ]]; then fields=$(parse_wrk "$out"); else fields=$(parse_bombardier "$out"); fi
                read -r rps requests p50 p90 p99 connect read write tmo non2xx <<<"$fields"
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$config" "$mode" "$tool" \
                    "$rps" "$requests" "$p50" "$p90" "$p99" "$connect" "$read" "$write" "$tmo" "$non2xx" >>"$RAW"
                log "round $round/$ROUNDS $config $mode $tool: $rps req/s, p99 ${p99} ms, errors c/r/w/t $connect/$read/$write/$tmo, non-2xx $non2xx"
            done
        done
        kill -0 "$SERVER_PID" 2>/dev/null || die "$config (pid $SERVER_PID) died during the run; see $WORK_DIR"
        stop_server 15
        ((${STOP_SECONDS%.*} < 10)) || log "$config took ${STOP_SECONDS}s to stop"
    done
done

# Medians per configuration, mode and tool; ratios against stock Kestrel (or the first configuration without it).
column() { awk -F'\t' -v c="$1" -v m="$2" -v t="$3" -v k="$4" 'NR > 1 && $2 == c && $3 == m && $4 == t { print $k }' "$RAW"; }
sum_column() { column "$@" | awk '{ s += $1 } END { print s + 0 }'; }
BASE=${BASE_CONFIG:-stock}
[[ " ${CONFIG_LIST[*]} " == *" $BASE "* ]] || BASE=${CONFIG_LIST[0]}

TABLE="$WORK_DIR/table.md"
PLOT_DATA="$WORK_DIR/plot.dat"
{
    echo "| mode | tool | configuration | req/s (median) | vs $BASE | req/s per round | p50 ms | p90 ms | p99 ms | p99 vs $BASE | socket errors c/r/w/t | non-2xx |"
    echo "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |"
} >"$TABLE"
: >"$PLOT_DATA"
for mode in "${MODE_LIST[@]}"; do
    for tool in "${TOOLS[@]}"; do
        base_rps=$(column "$BASE" "$mode" "$tool" 5 | median)
        base_p99=$(column "$BASE" "$mode" "$tool" 9 | median)
        for config in "${CONFIG_LIST[@]}"; do
            rps=$(column "$config" "$mode" "$tool" 5 | median)
            p50=$(column "$config" "$mode" "$tool" 7 | median)
            p90=$(column "$config" "$mode" "$tool" 8 | median)
            p99=$(column "$config" "$mode" "$tool" 9 | median)
            per_round=$(column "$config" "$mode" "$tool" 5 | awk '{ printf "%s%.0f", (NR > 1 ? " / " : ""), $1 }')
            errors="$(sum_column "$config" "$mode" "$tool" 10)/$(sum_column "$config" "$mode" "$tool" 11)/$(sum_column "$config" "$mode" "$tool" 12)/$(sum_column "$config" "$mode" "$tool" 13)"
            non2xx=$(sum_column "$config" "$mode" "$tool" 14)
            ratio=$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / (b > 0 ? b : 1) }')
            p99_ratio=$(awk -v a="$p99" -v b="$base_p99" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / (b > 0 ? b : 1) }')
            printf '| %s | %s | %s | %.0f | %s | %s | %.2f | %.2f | %.2f | %s | %s | %s |\n' "$mode" "$tool" "$config" "$rps" "$ratio" \
                "$per_round" "$p50" "$p90" "$p99" "$p99_ratio" "$errors" "$non2xx" >>"$TABLE"
            [[ "$tool" == wrk ]] && printf '%s\t%s\t%.0f\t%.3f\n' "$config" "$mode" "$rps" "$p99" >>"$PLOT_DATA"
        done
    done
done

{
    echo "# Stock Kestrel vs Kestrel.ReusePort$([[ " ${CONFIG_LIST[*]} " == *" nginx "* ]] && echo " vs nginx reuseport") on loopback"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), Linux $(uname -r), .NET $(dotnet --version)."
    echo "Load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after a $WARMUP warm-up), keep-alive and churn (-H 'Connection: close')$([[ ${#TOOLS[@]} -gt 1 ]] && echo ", and bombardier -c $CONNECTIONS -d $DURATION -l")."
    echo "$ROUNDS rounds, configurations in turns (${CONFIG_LIST[*]}), each round on a new process and port; medians over the rounds."
    echo "Client and server share the 2 cores, so these are ratios on one noisy machine, not capacity figures."
    echo
    for config in "${CONFIG_LIST[@]}"; do echo "- **$config**: ${NOTES[$config]:-}"; done
    echo
    cat "$TABLE"
    echo
    echo "Socket errors are summed over the rounds (connect/read/write/timeout as wrk counts them); p-values in ms."
} >"$REPORT"

echo
cat "$REPORT"
echo

if ((PLOT)) && ensure_gnuplot; then
    # One bar group per configuration: throughput (left) and p99 (right), keep-alive and churn side by side.
    awk -F'\t' '{ order[$1] = (order[$1] ? order[$1] : ++n); rps[$1, $2] = $3; p99[$1, $2] = $4 }
        END { for (c in order) name[order[c]] = c
              for (i = 1; i <= n; i++) { c = name[i]; printf "%s %s %s %s %s\n", c, (rps[c, "keepalive"] == "" ? 0 : rps[c, "keepalive"]), (rps[c, "churn"] == "" ? 0 : rps[c, "churn"]), (p99[c, "keepalive"] == "" ? 0 : p99[c, "keepalive"]), (p99[c, "churn"] == "" ? 0 : p99[c, "churn"]) } }' \
        "$PLOT_DATA" >"$WORK_DIR/plot.table"
    gnuplot <<GNUPLOT
set terminal pngcairo size 1200,500 font ",10" noenhanced
set output "$PLOT_FILE"
set multiplot layout 1,2 title "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1, median of $ROUNDS rounds ($(nproc) cores, shared by client and server)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal
set yrange [0:*]
set title "Throughput (requests/s, higher is better)"
plot "$WORK_DIR/plot.table" using 2:xtic(1) title "keep-alive", "" using 3 title "churn (Connection: close)"
set title "p99 latency (ms, lower is better)"
plot "$WORK_DIR/plot.table" using 4:xtic(1) title "keep-alive", "" using 5 title "churn (Connection: close)"
unset multiplot
GNUPLOT
    log "plot: $PLOT_FILE"
elif ((PLOT)); then
    log "gnuplot is not available and could not be installed (apt-get install gnuplot-nox): no plot"
fi

if ((PUBLISH)); then
    cp "$REPORT" "$LOAD_DIR/results.md"
    [[ -f "$PLOT_FILE" ]] && cp "$PLOT_FILE" "$LOAD_DIR/results.png"
    log "published: benchmark/load/results.md$([[ -f "$PLOT_FILE" ]] && echo " and results.png")"
fi
mkdir -p "$RESULTS_DIR/compare-$STAMP-logs"
cp "$WORK_DIR"/*.log "$WORK_DIR"/*.out "$RESULTS_DIR/compare-$STAMP-logs/" 2>/dev/null || true
log "server logs and raw load-generator output: $RESULTS_DIR/compare-$STAMP-logs"
log "report: $REPORT, raw: $RAW"
