#!/usr/bin/env bash
# What a deploy costs clients, against the machine's floor. For each build of the sample (sample/WebApp) and each load
# mode, in turns within every round (the phases' order rotating from round to round), three phases of the same load
# (wrk -t1 -cC, after a short unmeasured warm-up of the served instance):
#   steady   one instance serves; nothing else happens;
#   deploys  every --every seconds a new instance starts on the same --urls, the script waits until it holds the port
#            (its "Application started": after the socket takeover and warm-up), then SIGTERMs the old one;
#   control  the same cadence, but each new instance is an unrelated instance of the same build on ANOTHER port, which
#            replaces the previous one there, while the served instance keeps serving: the start-up and shutdown CPU
#            of a deploy without its traffic moving, i.e. the floor of what any deploy on this box can cost.
# deploys/control is what the deploy costs beyond starting a process; control/steady is that floor.
# Prints a markdown table (medians over the rounds of the per-round ratios) and writes it, with every wrk output and
# instance log, under benchmark/load/results/deploy-cost-<date>/. Exits 1 if any phase saw a socket error or a non-2xx
# response, or a deploy did not take the sockets over; 2 on a setup failure.
#
# Usage: benchmark/load/deploy-cost.sh [options]
#   --rounds N        rounds (default 3)
#   --duration S      seconds of measured load per phase (default 30)
#   --every S         seconds between two deploys or control starts (default 3)
#   --builds LIST     comma-separated, in this order per round (default jit,aot):
#                       jit           dotnet WebApp.dll (framework-dependent Release publish), default runtime settings
#                       jit-nopgo     jit + DOTNET_TieredPGO=0 (no instrumented tier: one recompilation per hot method
#                                     instead of two)
#                       jit-warm      jit + DOTNET_TC_CallCountingDelayMs=0 + DOTNET_TieredPGO=0 and 100 warm-up
#                                     requests per path: the hot path reaches tier 1 during the warm-up, before traffic
#                       jit-notiered  jit + DOTNET_TieredCompilation=0 (ReadyToRun code or fully optimised JIT at first
#                                     call; never recompiled)
#                       r2r           self-contained ReadyToRun composite (framework and app) with TieredPGO off
#                                     (-p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true -p:TieredPGO=false)
#                       aot           NativeAOT (-p:PublishAot=true; needs clang, lld, zlib1g-dev)
#   --modes LIST      keepalive, churn (every request with Connection: close) (default keepalive,churn)
#   --connections C   wrk connections (default 16)
#   --warmup S        seconds of unmeasured load on the served instance before each phase (default 3)
#   --start-timeout S longest wait for an instance to start (default 60)
#   --no-build        use the builds already under results/deploy-cost-builds/
# Time: rounds x builds x modes x 3 x (duration + warmup + about 3 s), plus the builds the first time (the aot and r2r
# publishes take a few minutes of CPU each). Defaults with 2 builds: 3 x 2 x 2 x 3 x 36 s = 22 minutes.
set -euo pipefail

# shellcheck source=benchmark/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=3
DURATION=30
EVERY=3
BUILDS=jit,aot
MODES=keepalive,churn
CONNECTIONS=16
WARMUP=3
BUILD=1
STOP_TIMEOUT=35
START_TIMEOUT=60

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --every) EVERY=$2; shift ;;
        --builds) BUILDS=$2; shift ;;
        --modes) MODES=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --start-timeout) START_TIMEOUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive whole number"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive whole number of seconds"
[[ "$EVERY" =~ ^[1-9][0-9]*$ ]] || die "--every must be a positive whole number of seconds"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ "$START_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--start-timeout must be a positive whole number of seconds"
IFS=, read -r -a BUILD_LIST <<<"$BUILDS"
IFS=, read -r -a MODE_LIST <<<"$MODES"
for b in "${BUILD_LIST[@]}"; do
    [[ "$b" =~ ^(jit|jit-nopgo|jit-warm|jit-notiered|r2r|aot)$ ]] || die "unknown build $b"
done
for m in "${MODE_LIST[@]}"; do
    [[ "$m" =~ ^(keepalive|churn)$ ]] || die "unknown mode $m"
done
require dotnet wrk curl ss awk

WORK_DIR=$(mktemp -d /tmp/deploy-cost.XXXXXX)
trap cleanup_children EXIT
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT_DIR="$LOAD_DIR/results/deploy-cost-$STAMP"
BUILD_ROOT="$LOAD_DIR/results/deploy-cost-builds"
mkdir -p "$OUT_DIR" "$BUILD_ROOT"
RUNS="$OUT_DIR/runs.tsv"
printf 'round\tbuild\tmode\tphase\trps\tp99_ms\terrors\tnon2xx\tstarts\thandoffs\tlate\n' >"$RUNS"

# ---- builds ---------------------------------------------------------------------------------------------------------
# Which publish a build runs: jit* share one framework-dependent publish.
publish_of() {
    case "$1" in
        jit*) echo jit ;;
        *) echo "$1" ;;
    esac
}

publish() {
    local kind=$1 dir="$BUILD_ROOT/$1" flags=() attempt
    case "$kind" in
        jit) flags=() ;;
        r2r) flags=(-r linux-x64 --self-contained -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true -p:TieredPGO=false) ;;
        aot) flags=(-r linux-x64 -p:PublishAot=true) ;;
    esac
    for attempt in 1 2 3; do
        log "dotnet publish sample/WebApp -c Release ${flags[*]} (attempt $attempt)"
        # Own intermediate folders per build: the RID-specific publishes must not touch the sample's ordinary build.
        if dotnet publish "$REPO_ROOT/sample/WebApp/WebApp.csproj" -c Release "${flags[@]}" --nologo \
            --artifacts-path "$BUILD_ROOT/.artifacts-$kind" -o "$dir" >"$WORK_DIR/publish-$kind.log" 2>&1; then
            if grep -Eq 'warning IL[23][0-9]{3}' "$WORK_DIR/publish-$kind.log"; then
                grep -E 'warning IL[23][0-9]{3}' "$WORK_DIR/publish-$kind.log" | sort -u >&2
                die "the $kind publish has trim/AOT warnings"
            fi
            return 0
        fi
        tail -20 "$WORK_DIR/publish-$kind.log" >&2
        ((attempt < 3)) || die "the $kind publish failed"
        sleep 5
    done
}

declare -A PUBLISHED=()
for b in "${BUILD_LIST[@]}"; do
    kind=$(publish_of "$b")
    [[ -n "${PUBLISHED[$kind]:-}" ]] && continue
    PUBLISHED[$kind]=1
    if ((BUILD)); then
        start=$SECONDS
        publish "$kind"
        log "$kind published in $((SECONDS - start)) s"
    fi
    [[ -e "$BUILD_ROOT/$kind/WebApp.dll" || -x "$BUILD_ROOT/$kind/WebApp" ]] || die "no $kind build under $BUILD_ROOT/$kind (run without --no-build)"
done

# Sets RUN_CMD, RUN_ENV and RUN_ARGS for build $1.
build_command() {
    local dir="$BUILD_ROOT/$(publish_of "$1")"
    RUN_ENV=()
    RUN_ARGS=(--contentRoot "$dir")
    if [[ "$(publish_of "$1")" == jit ]]; then
        RUN_CMD=(dotnet "$dir/WebApp.dll")
    else
        RUN_CMD=("$dir/WebApp")
    fi
    case "$1" in
        jit-nopgo) RUN_ENV=(DOTNET_TieredPGO=0) ;;
        jit-warm) RUN_ENV=(DOTNET_TC_CallCountingDelayMs=0 DOTNET_TieredPGO=0); RUN_ARGS+=(--ReusePort:Warmup:Requests=100) ;;
        jit-notiered) RUN_ENV=(DOTNET_TieredCompilation=0) ;;
    esac
}

# ---- instances ------------------------------------------------------------------------------------------------------
INSTANCE=0
# Starts build $1 on port $2 and waits (at most --start-timeout) until its host has started, which comes after it took the port's
# sockets (over) and accepts: sets INSTANCE_PID and INSTANCE_LOG.
start_instance() {
    local build=$1 port=$2 deadline
    build_command "$build"
    INSTANCE=$((INSTANCE + 1))
    INSTANCE_LOG="$WORK_DIR/instance-$INSTANCE.log"
    env "${RUN_ENV[@]}" "${RUN_CMD[@]}" "${RUN_ARGS[@]}" --urls "http://127.0.0.1:$port" >"$INSTANCE_LOG" 2>&1 &
    INSTANCE_PID=$!
    track_child "$INSTANCE_PID"
    deadline=$((SECONDS + START_TIMEOUT))
    until grep -q 'Application started' "$INSTANCE_LOG" 2>/dev/null; do
        kill -0 "$INSTANCE_PID" 2>/dev/null || { cat "$INSTANCE_LOG" >&2; die "instance $INSTANCE ($build) exited during start-up"; }
        ((SECONDS < deadline)) || { cat "$INSTANCE_LOG" >&2; die "instance $INSTANCE ($build) did not start within $START_TIMEOUT s"; }
        sleep 0.02
    done
}

# Whether the log of an instance says it took the sockets over from a running one (event 6, HandoffReceived).
took_over() { grep -q 'Kestrel.ReusePort\[6\]' "$1"; }

# Old instances get SIGTERM and drain in the background, so that the cadence holds; they are reaped at the phase's end,
# without a second SIGTERM: one that lands after the host has let go of its signal handlers would kill the process.
STOPPING=()
reap_stopping() {
    local pid status deadline
    for pid in "${STOPPING[@]:-}"; do
        [[ -n "$pid" ]] || continue
        deadline=$((SECONDS + STOP_TIMEOUT))
        while ((SECONDS < deadline)) && running "$pid"; do sleep 0.05; done
        if running "$pid"; then
            log "instance pid $pid did not exit within ${STOP_TIMEOUT}s after SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        status=0
        wait "$pid" 2>/dev/null || status=$?
        untrack_child "$pid"
        ((status == 0)) || fail "instance pid $pid did not exit cleanly (status $status; its log: instances/, by pid)"
    done
    STOPPING=()
}

wrk_load() {
    local url=$1 seconds=$2 out=$3 mode=$4 header=()
    [[ "$mode" == churn ]] && header=(-H 'Connection: close')
    wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency --timeout 2s "${header[@]}" "$url" >"$out" 2>&1
}

FAILED=0
FAILURES=()
# Records why the exit status will be 1; the reasons are repeated at the end.
fail() { log "$1"; FAILURES+=("$1"); FAILED=1; }

# Runs phase $4 of build $2, mode $3, round $1; appends a line to runs.tsv.
run_phase() {
    local round=$1 build=$2 mode=$3 phase=$4 port url out starts=0 handoffs=0 late=0 load_pid next now wait_s other_port=""
    local served previous="" rps requests p50 p90 p99 con rd wr tmo non2xx
    port=$(free_port)
    url="http://127.0.0.1:$port/"
    out="$OUT_DIR/r$round-$build-$mode-$phase"
    start_instance "$build" "$port"
    served=$INSTANCE_PID
    cp "$INSTANCE_LOG" "$out.served-start.log"
    ((WARMUP > 0)) && wrk_load "$url" "$WARMUP" "$out.warmup.txt" "$mode"

    # The cadence counts from the start of the measured load, after the served instance's start-up and warm-up load.
    START=$EPOCHREALTIME
    wrk_load "$url" "$DURATION" "$out.wrk.txt" "$mode" &
    load_pid=$!
    track_child "$load_pid"
    if [[ "$phase" == control ]]; then
        other_port=$(free_port)
    fi
    if [[ "$phase" != steady ]]; then
        next=$(awk -v a="$START" -v e="$EVERY" 'BEGIN { printf "%.6f", a + e }')
        while :; do
            wait_s=$(awk -v t="$next" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
            # No start in the last second of the load: its cost would fall outside the measurement.
            if awk -v t="$next" -v e="$EPOCHREALTIME" -v d="$DURATION" -v s="$START" 'BEGIN { exit !(t + 1 > s + d) }'; then
                break
            fi
            if [[ "$wait_s" == 0.000 ]]; then late=$((late + 1)); else sleep "$wait_s"; fi
            next=$(awk -v a="$next" -v e="$EVERY" 'BEGIN { printf "%.6f", a + e }')
            if [[ "$phase" == deploys ]]; then
                start_instance "$build" "$port"
                starts=$((starts + 1))
                took_over "$INSTANCE_LOG" && handoffs=$((handoffs + 1))
                cp "$INSTANCE_LOG" "$out.instance-$starts.log"
                kill -TERM "$served" 2>/dev/null || true
                STOPPING+=("$served")
                served=$INSTANCE_PID
            else
                start_instance "$build" "$other_port"
                starts=$((starts + 1))
                if [[ -n "$previous" ]]; then
                    took_over "$INSTANCE_LOG" && handoffs=$((handoffs + 1))
                    kill -TERM "$previous" 2>/dev/null || true
                    STOPPING+=("$previous")
                fi
                previous=$INSTANCE_PID
            fi
        done
    fi
    wait "$load_pid" 2>/dev/null || true
    untrack_child "$load_pid"
    [[ -n "$previous" ]] && { kill -TERM "$previous" 2>/dev/null || true; STOPPING+=("$previous"); }
    kill -TERM "$served" 2>/dev/null || true
    STOPPING+=("$served")
    reap_stopping
    read -r rps requests p50 p90 p99 con rd wr tmo non2xx <<<"$(parse_wrk "$out.wrk.txt")"
    local errors=$((con + rd + wr + tmo))
    ((errors == 0 && non2xx == 0)) || fail "round $round, $build, $mode, $phase: $errors errors, $non2xx non-2xx"
    # Every deploy must take the sockets over (the first control start has no predecessor on its port).
    if [[ "$phase" == deploys ]] && ((handoffs != starts)); then fail "round $round, $build, $mode, deploys: $handoffs handoffs for $starts starts"; fi
    if [[ "$phase" == control ]] && ((starts > 0 && handoffs != starts - 1)); then fail "round $round, $build, $mode, control: $handoffs handoffs for $starts starts"; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$build" "$mode" "$phase" "$rps" "$p99" "$errors" "$non2xx" "$starts" "$handoffs" "$late" >>"$RUNS"
    log "round $round, $build, $mode, $phase: $rps req/s, p99 $p99 ms, $errors errors, $non2xx non-2xx, $starts starts ($handoffs handoffs, $late late)"
}

# ---- the rounds -----------------------------------------------------------------------------------------------------
log "deploy-cost: $ROUNDS rounds x builds ${BUILDS} x modes ${MODES} x (steady, deploys, control), ${DURATION}s each, a start every ${EVERY}s, wrk -t1 -c$CONNECTIONS; results in ${OUT_DIR#"$REPO_ROOT"/}"
PHASES=(steady deploys control)
for ((round = 1; round <= ROUNDS; round++)); do
    for build in "${BUILD_LIST[@]}"; do
        for mode in "${MODE_LIST[@]}"; do
            # The order of the phases rotates from round to round, so that no phase always runs first or right after
            # another build's (a churn phase leaves tens of thousands of TIME_WAIT sockets for a minute, for one).
            for phase in "${PHASES[@]:$(((round - 1) % 3))}" "${PHASES[@]:0:$(((round - 1) % 3))}"; do
                run_phase "$round" "$build" "$mode" "$phase"
            done
        done
    done
done

# ---- report ---------------------------------------------------------------------------------------------------------
REPORT="$OUT_DIR/report.md"
{
    echo "Deploy cost against the floor: \`benchmark/load/deploy-cost.sh --rounds $ROUNDS --duration $DURATION --every $EVERY --builds $BUILDS --modes $MODES --connections $CONNECTIONS\`"
    echo "($(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c$CONNECTIONS on the same machine; medians over $ROUNDS rounds of the per-round ratios; errors and non-2xx summed over all rounds)"
    echo
    echo "| build, mode | steady req/s | throughput: deploys / steady | control / steady | **deploys / control** | p99: deploys / steady | control / steady | **deploys / control** | errors, non-2xx | deploys (handoffs) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for build in "${BUILD_LIST[@]}"; do
        for mode in "${MODE_LIST[@]}"; do
            awk -F'\t' -v b="$build" -v m="$mode" -v rounds="$ROUNDS" '
                function med(arr, n,   i, j, t) {
                    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
                    if (n == 0) return -1
                    return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2 }
                function fmt(v) { return v < 0 ? "n/a" : sprintf("%.2f", v) }
                NR > 1 && $2 == b && $3 == m { rps[$1, $4] = $5; p99[$1, $4] = $6; err += $7; non += $8
                    if ($4 == "deploys") { starts += $9; hand += $10 } }
                END {
                    n = 0
                    for (r = 1; r <= rounds; r++) {
                        if (!((r, "steady") in rps) || !((r, "deploys") in rps) || !((r, "control") in rps)) continue
                        if (rps[r, "steady"] <= 0 || rps[r, "control"] <= 0 || p99[r, "steady"] <= 0 || p99[r, "control"] <= 0) continue
                        n++
                        s[n] = rps[r, "steady"]
                        tds[n] = rps[r, "deploys"] / rps[r, "steady"]; tcs[n] = rps[r, "control"] / rps[r, "steady"]; tdc[n] = rps[r, "deploys"] / rps[r, "control"]
                        pds[n] = p99[r, "deploys"] / p99[r, "steady"]; pcs[n] = p99[r, "control"] / p99[r, "steady"]; pdc[n] = p99[r, "deploys"] / p99[r, "control"]
                    }
                    printf "| %s, %s | %.0f | %s× | %s× | **%s** | %s× | %s× | **%s** | %d, %d | %d (%d) |\n", b, m, med(s, n),
                        fmt(med(tds, n)), fmt(med(tcs, n)), fmt(med(tdc, n)), fmt(med(pds, n)), fmt(med(pcs, n)), fmt(med(pdc, n)), err, non, starts, hand
                }' "$RUNS"
        done
    done
    echo
    echo "Builds: jit = \`dotnet WebApp.dll\`; jit-nopgo = DOTNET_TieredPGO=0;"
    echo "jit-warm = DOTNET_TC_CallCountingDelayMs=0, DOTNET_TieredPGO=0, --ReusePort:Warmup:Requests=100; jit-notiered = DOTNET_TieredCompilation=0;"
    echo "r2r = self-contained ReadyToRun composite, TieredPGO off; aot = PublishAot. Per-phase figures: runs.tsv."
} >"$REPORT"
cat "$REPORT"
cp "$WORK_DIR"/publish-*.log "$OUT_DIR/" 2>/dev/null || true
mkdir -p "$OUT_DIR/instances" && cp "$WORK_DIR"/instance-*.log "$OUT_DIR/instances/" 2>/dev/null || true
for reason in "${FAILURES[@]:-}"; do [[ -n "$reason" ]] && log "failed: $reason"; done
exit "$FAILED"
