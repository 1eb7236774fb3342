#!/usr/bin/env bash
# A rolling deploy between two "containers" on one host, emulated with unshare (util-linux, run as root): each
# instance gets a PID and a mount namespace of its own, with its own /proc, exactly what `docker run --network host`
# gives a container; they share the network namespace (the port, and the kernel's SO_REUSEPORT group) and one
# rendezvous directory, as a shared volume would. The instances cannot see each other's processes, so the rendezvous
# must be that directory: the /proc-based discovery used for plain service accounts needs one PID namespace.
#
#   sample/containers/deploy-namespaced.sh [PORT]       # default 5000; needs the sample built (dotnet build sample/WebApp)
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${1:-5000}
app=sample/WebApp/bin/Debug/net10.0/WebApp.dll
[ -f "$app" ] || { echo "build the sample first: dotnet build sample/WebApp" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "unshare --pid needs root here" >&2; exit 2; }

# The shared volume: owned by the instances' user, writable by it alone.
volume=$(mktemp -d /tmp/kestrel-reuseport-volume.XXXXXX)
chmod 0700 "$volume"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$volume"; }
trap cleanup EXIT

start() {   # start NAME: a "container" with its own PID and mount namespaces, logging to $volume/NAME.log
  unshare --pid --fork --mount-proc --kill-child \
    dotnet "$app" --urls "http://127.0.0.1:$port" --ReusePort:RendezvousDirectory="$volume/rendezvous" \
    >"$volume/$1.log" 2>&1 &
  pids+=($!)
  until grep -q "Application started" "$volume/$1.log"; do sleep 0.1; done
  echo "$1: $(grep -o 'Listening on .*' "$volume/$1.log")"
}

# As `docker stop` does: SIGTERM to the container's PID 1, which is the app (unshare itself does not pass it on).
stop() { kill -TERM "$(cat "/proc/$1/task/$1/children")"; wait "$1" || true; }

start blue
curl -s "http://127.0.0.1:$port/"                 # Hello from pid 1: the app is PID 1 of its namespace
start green                                      # takes blue's sockets over through the shared directory
stop "${pids[0]}"                                # blue drains and exits
echo "blue stopped; the port is served by green:"
for _ in 1 2 3; do curl -s -H 'Connection: close' "http://127.0.0.1:$port/"; done
