# Shared helpers of benchmark/load/*.sh; sourced, not run. Loopback only: every URL here is http://127.0.0.1:PORT.
# shellcheck shell=bash

LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LOAD_DIR/../.." && pwd)
REUSEPORT_DLL="$REPO_ROOT/sample/WebApp/bin/Release/net10.0/WebApp.dll"
STOCK_DLL="$REPO_ROOT/benchmark/StockWebApp/bin/Release/net10.0/StockWebApp.dll"
# benchmark/YarpProxy: YARP in front of stock Kestrel (the yarp-proxy configuration).
YARP_DLL="$REPO_ROOT/benchmark/YarpProxy/bin/Release/net10.0/YarpProxy.dll"
# benchmark/LoadTimeline: load with throughput, latency and errors per interval (rolling-restart.sh --tool timeline).
TIMELINE_DLL="$REPO_ROOT/benchmark/LoadTimeline/bin/Release/net10.0/LoadTimeline.dll"
# The apps run with --contentRoot set to their output folder: from any other working directory they would not find
# their appsettings.json, and would log every request at Information level to the console.

# Processes started by a script (servers, load generators): the EXIT trap ends them by pid.
CHILD_PIDS=()
WORK_DIR=""

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 2; }

track_child() { CHILD_PIDS+=("$1"); }

# Forgets a pid once its process has been waited for, so that the EXIT trap never signals a recycled pid.
untrack_child() {
    local pid kept=()
    for pid in "${CHILD_PIDS[@]:-}"; do
        [[ -n "$pid" && "$pid" != "$1" ]] && kept+=("$pid")
    done
    CHILD_PIDS=("${kept[@]:-}")
}

# Ends every process this script started (TERM, then KILL after 5 s), then removes the temp dir unless KEEP_TMP=1.
cleanup_children() {
    local pid deadline
    for pid in "${CHILD_PIDS[@]:-}"; do
        [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 5))
    for pid in "${CHILD_PIDS[@]:-}"; do
        [[ -z "$pid" ]] && continue
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CHILD_PIDS=()
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" && "${KEEP_TMP:-0}" != 1 ]]; then
        rm -rf "$WORK_DIR"
    fi
}

require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is needed on PATH"
    done
}

# A real bombardier (codesenberg's Go load generator), never Debian's game of the same name.
real_bombardier() {
    local path
    path=$(command -v bombardier 2>/dev/null) || return 1
    [[ "$path" != /usr/games/* ]] || return 1
    grep -aq 'codesenberg/bombardier' "$path" 2>/dev/null
}

# Release builds of both apps, and of YarpProxy when CONFIG_LIST has yarp-proxy; a build can trip over another build's
# file locks, so it is retried.
build_apps() {
    local project attempt projects=("$REPO_ROOT/sample/WebApp/WebApp.csproj" "$REPO_ROOT/benchmark/StockWebApp/StockWebApp.csproj")
    [[ " ${CONFIG_LIST[*]:-} " == *" yarp-proxy "* ]] && projects+=("$REPO_ROOT/benchmark/YarpProxy/YarpProxy.csproj")
    for project in "${projects[@]}"; do
        for attempt in 1 2 3; do
            log "dotnet build -c Release ${project#"$REPO_ROOT"/} (attempt $attempt)"
            if dotnet build -c Release --nologo -v quiet "$project" >"$WORK_DIR/build.log" 2>&1; then
                break
            fi
            tail -20 "$WORK_DIR/build.log" >&2
            ((attempt < 3)) || die "build of $project failed"
            sleep 5
        done
    done
}

# Release build of benchmark/LoadTimeline, retried like build_apps.
build_timeline() {
    local attempt project="$REPO_ROOT/benchmark/LoadTimeline/LoadTimeline.csproj"
    for attempt in 1 2 3; do
        log "dotnet build -c Release ${project#"$REPO_ROOT"/} (attempt $attempt)"
        dotnet build -c Release --nologo -v quiet "$project" >"$WORK_DIR/build-timeline.log" 2>&1 && return 0
        tail -20 "$WORK_DIR/build-timeline.log" >&2
        ((attempt < 3)) || die "build of $project failed"
        sleep 5
    done
}

# A loopback port below the ephemeral range (so that no client socket holds it) with no socket on it in any state.
free_port() {
    local port i low=20000 high=32000
    for ((i = 0; i < 200; i++)); do
        port=$((low + RANDOM % (high - low)))
        if [[ -z "$(ss -Htan "( sport = :$port or dport = :$port )" 2>/dev/null)" ]]; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# Waits until URL answers 200, for at most $3 seconds; fails early if process $2 died.
wait_ready() {
    local url=$1 pid=$2 timeout=${3:-30} deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Whether process $1 exists and is not a zombie (an exited child nobody has waited for yet).
running() {
    local state
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# SIGTERM to child $1, then up to $2 seconds for it to exit (then SIGKILL). Sets STOP_SECONDS (time to exit),
# STOP_STATUS (exit status), STOP_KILLED (1 if it had to be killed), and STOP_SENT_AT / STOP_EXITED_AT (Unix time of
# the SIGTERM and of the exit seen, $EPOCHREALTIME). Call it in the script's own shell, not in $(...): only the parent
# can wait for the process.
stop_process() {
    local pid=$1 timeout=${2:-15} start=$EPOCHREALTIME deadline
    STOP_KILLED=0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)) && running "$pid"; do sleep 0.02; done
    if running "$pid"; then
        log "process $pid did not exit within ${timeout}s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        STOP_KILLED=1
    fi
    STOP_EXITED_AT=$EPOCHREALTIME
    STOP_SENT_AT=$start
    STOP_STATUS=0
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
    untrack_child "$pid"
    STOP_SECONDS=$(awk -v a="$start" -v b="$STOP_EXITED_AT" 'BEGIN { printf "%.2f", b - a }')
}

# Stops what start_server started: the server, and the backend behind nginx-proxy.
stop_server() {
    stop_process "$SERVER_PID" "${1:-15}"
    if [[ -n "$SERVER_BACKEND_PID" ]]; then
        stop_process "$SERVER_BACKEND_PID" "${1:-15}"
        SERVER_BACKEND_PID=""
    fi
}

# Converts wrk/bombardier durations (812.00us, 1.23ms, 2.00s, 1.50m) to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us" || u == "µs") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; else if (u == "h") n *= 3600000
        printf "%.3f\n", n }'
}

# Parses wrk --latency output into: rps requests p50_ms p90_ms p99_ms connect read write timeout non2xx
parse_wrk() {
    local file=$1 rps requests p50 p90 p99 connect=0 read=0 write=0 timeout=0 non2xx=0 line
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$file")
    requests=$(awk '/requests in/ { print $1 }' "$file")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$file")")
    p90=$(to_ms "$(awk '$1 == "90%" { print $2 }' "$file")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$file")")
    line=$(grep -m1 'Socket errors:' "$file" || true)
    if [[ -n "$line" ]]; then
        read -r connect read write timeout < <(sed -E 's/.*connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+).*/\1 \2 \3 \4/' <<<"$line")
    fi
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$file")
    echo "${rps:-0} ${requests:-0} ${p50:-0} ${p90:-0} ${p99:-0} $connect $read $write $timeout ${non2xx:-0}"
}

# Parses bombardier -l (plain text) output into the same fields. Bombardier has no connect/read/write/timeout split:
# its error lines ("dial tcp ...: connect: connection refused - 3", "timeout - 2", "EOF - 1") are classified here.
parse_bombardier() {
    local file=$1
    awk '
        function ms(v,   n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us" || u == "µs") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; return n }
        /^ *Reqs\/sec/ { rps = $2 }
        /^ *50% / { p50 = ms($2) } /^ *90% / { p90 = ms($2) } /^ *99% / { p99 = ms($2) }
        /1xx - .*2xx - / { for (i = 1; i <= NF; i++) if ($i ~ /^[1-5]xx$/) { c = $(i + 2); gsub(/,/, "", c); code[substr($i, 1, 1)] = c + 0 }
            bad += code[1] + code[3] + code[4] + code[5]; total += code[1] + code[2] + code[3] + code[4] + code[5] }
        /^ *others - / { others = $3 + 0; total += others }
        /^ *Errors:/ { inerr = 1; next }
        /^ *Throughput:/ { inerr = 0 }
        inerr && / - [0-9]+$/ { c = $NF + 0; l = tolower($0)
            if (l ~ /timeout|deadline/) to += c; else if (l ~ /dial|connect/) co += c; else if (l ~ /write|broken pipe/) wr += c; else rd += c }
        END { printf "%s %d %.3f %.3f %.3f %d %d %d %d %d\n", (rps == "" ? 0 : rps), total, p50, p90, p99, co, rd, wr, to, bad }
    ' "$file"
}

# Median of the numbers on stdin (mean of the two middle ones for an even count).
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print 0; exit } m = int((NR + 1) / 2); if (NR % 2) printf "%.3f\n", v[m]; else printf "%.3f\n", (v[m] + v[m + 1]) / 2 }'
}

# gnuplot from Debian (gnuplot-nox) when missing; prints nothing and fails softly when it cannot be installed.
ensure_gnuplot() {
    command -v gnuplot >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || return 1
    log "installing gnuplot-nox with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >"$WORK_DIR/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$WORK_DIR/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >>"$WORK_DIR/apt.log" 2>&1 || return 1
    fi
    command -v gnuplot >/dev/null 2>&1
}

# Sets CONFIG_LIST from a comma-separated list of start_server's configurations, checked; an empty list means stock,
# reuseport and, when it is installed, nginx.
select_configs() {
    local list=$1 config
    if [[ -z "$list" ]]; then
        list="stock,reuseport"
        command -v nginx >/dev/null 2>&1 && list+=",nginx"
    fi
    IFS=, read -r -a CONFIG_LIST <<<"$list"
    for config in "${CONFIG_LIST[@]}"; do
        [[ "$config" =~ ^(stock|reuseport|reuseport-[1-9][0-9]*|reuseport-defer|nginx|nginx-proxy|nginx-proxy-defaults|yarp-proxy)$ ]] || die "unknown configuration $config"
        [[ "$config" != nginx* ]] || require nginx
    done
}

SERVER_PID=""
SERVER_NOTE=""
SERVER_BACKEND_PID=""

# Writes $1/nginx.conf: foreground, 2 workers, no access log, keep-alive without a request limit (as Kestrel; with $3 =
# defaults, nginx's own limit of 1000 requests per connection), temp paths under $1/tmp, and $2 (upstreams and
# servers) in the http block.
write_nginx_conf() {
    local dir=$1 servers=$2 limit="keepalive_requests 100000000;"
    [[ "${3:-}" == defaults ]] && limit="# keepalive_requests: nginx's default (1000)"
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    # Kestrel has no limit on requests per connection; nginx closes after 1000 by default.
    $limit
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$servers
}
CONF
}

# Starts configuration $1 on port $2 (stock, reuseport, reuseport-N, reuseport-defer, nginx, nginx-proxy, yarp-proxy;
# see compare.sh --help); sets SERVER_PID, SERVER_NOTE (what it listens with) and, for nginx-proxy and yarp-proxy,
# SERVER_BACKEND_PID (the stock Kestrel behind it; stop_server stops both). Needs WORK_DIR. Further arguments go to the .NET apps.
start_server() {
    local config=$1 port=$2 logfile="$WORK_DIR/$1-$2.log" health=/healthz dll=$REUSEPORT_DLL options=()
    shift 2
    SERVER_BACKEND_PID=""
    case "$config" in
        nginx-proxy | nginx-proxy-defaults)
            # What users run for zero-downtime deploys without this library: nginx in front, blue/green behind it;
            # here one stock Kestrel behind it, with keep-alive connections from nginx to it, as recommended.
            # nginx-proxy lifts nginx's limit of requests per connection (both sides); nginx-proxy-defaults keeps it,
            # as nginx's upstream keep-alive recipe does: every 1000 requests a connection is closed and reopened.
            local dir="$WORK_DIR/$config-$port" backend defaults="" upstream_limit="keepalive_requests 100000000;"
            if [[ "$config" == nginx-proxy-defaults ]]; then
                defaults=defaults
                upstream_limit=""
            fi
            backend=$(free_port)
            dotnet "$STOCK_DLL" --contentRoot "${STOCK_DLL%/*}" --urls "http://127.0.0.1:$backend" "$@" >"$WORK_DIR/nginx-proxy-backend-$backend.log" 2>&1 &
            SERVER_BACKEND_PID=$!
            track_child "$SERVER_BACKEND_PID"
            wait_ready "http://127.0.0.1:$backend/healthz" "$SERVER_BACKEND_PID" 30 || die "the stock Kestrel behind nginx-proxy did not answer on port $backend"
            write_nginx_conf "$dir" "
    upstream kestrel {
        server 127.0.0.1:$backend;
        keepalive 64;
        $upstream_limit
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://kestrel;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$host;
        }
    }" "$defaults"
            nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$logfile" 2>&1 & ;;
        yarp-proxy)
            # The same blue/green setup built in .NET: YARP (benchmark/YarpProxy) in front of one stock Kestrel, HTTP/1.1
            # over pooled keep-alive connections to it, no limit of requests per connection, as nginx-proxy.
            local backend
            backend=$(free_port)
            dotnet "$STOCK_DLL" --contentRoot "${STOCK_DLL%/*}" --urls "http://127.0.0.1:$backend" "$@" >"$WORK_DIR/yarp-proxy-backend-$backend.log" 2>&1 &
            SERVER_BACKEND_PID=$!
            track_child "$SERVER_BACKEND_PID"
            wait_ready "http://127.0.0.1:$backend/healthz" "$SERVER_BACKEND_PID" 30 || die "the stock Kestrel behind yarp-proxy did not answer on port $backend"
            dll=$YARP_DLL
            options=(--Backend "http://127.0.0.1:$backend")
            set -- ;;
        stock) dll=$STOCK_DLL ;;
        reuseport) ;;
        reuseport-defer) options=(--ReusePort:DeferAccept=00:00:01) ;;
        reuseport-*) options=(--ReusePort:ListenerCount="${config#reuseport-}") ;;
        nginx)
            local dir="$WORK_DIR/nginx-$port"
            write_nginx_conf "$dir" "
    default_type text/plain;
    server {
        listen 127.0.0.1:$port reuseport;
        location / { return 200 \"Hello from pid \$pid\\n\"; }
    }"
            nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$logfile" 2>&1 &
            health=/ ;;
    esac
    if [[ "$config" != nginx* ]]; then
        dotnet "$dll" --contentRoot "${dll%/*}" --urls "http://127.0.0.1:$port" "${options[@]}" "$@" >"$logfile" 2>&1 &
    fi
    SERVER_PID=$!
    track_child "$SERVER_PID"
    wait_ready "http://127.0.0.1:$port$health" "$SERVER_PID" 30 || { cat "$logfile" >&2; die "$config did not answer on port $port"; }
    case "$config" in
        nginx) SERVER_NOTE="nginx, worker_processes 2, listen reuseport" ;;
        nginx-proxy) SERVER_NOTE="nginx reverse proxy (worker_processes 2, upstream keepalive 64, no limit of requests per connection) in front of StockWebApp" ;;
        nginx-proxy-defaults) SERVER_NOTE="nginx reverse proxy (worker_processes 2, upstream keepalive 64, nginx's default keepalive_requests 1000 on both sides) in front of StockWebApp" ;;
        yarp-proxy) SERVER_NOTE="YARP 2.3.0 reverse proxy (YarpProxy: HTTP/1.1 to the backend over pooled keep-alive connections, no limit of requests per connection) in front of StockWebApp" ;;
        stock) SERVER_NOTE="StockWebApp, one listening socket" ;;
        *) SERVER_NOTE=$(grep -o 'Listening on .* SO_REUSEPORT sockets' "$logfile" | head -1 || true) ;;
    esac
}
