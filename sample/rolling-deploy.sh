#!/usr/bin/env bash
# Rolling deploy of an app that uses UseReusePortSockets(), on one port, with no proxy:
# start the new instance, wait until it holds the port's listening sockets, then SIGTERM the old one.
#
#   sample/rolling-deploy.sh --port 5000 --pidfile /tmp/webapp.pid -- dotnet sample/WebApp/bin/Release/net10.0/WebApp.dll --urls http://127.0.0.1:5000
#
# The first run (no pidfile, or a dead pid in it) just starts the app. Every later run replaces the running instance.
# The new instance's output goes to --log (default: <pidfile>.<date-time>.log).
set -euo pipefail

usage() { echo "usage: $0 --port PORT --pidfile FILE [--log FILE] [--ready-timeout SECONDS] [--stop-timeout SECONDS] -- COMMAND [ARGS...]" >&2; exit 2; }

port= pidfile= log= ready_timeout=30 stop_timeout=40
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --pidfile) pidfile=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --ready-timeout) ready_timeout=$2; shift 2 ;;
    --stop-timeout) stop_timeout=$2; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ -n "$port" ] && [ -n "$pidfile" ] && [ $# -gt 0 ] || usage

old=
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  kill -0 "$old" 2>/dev/null || old=
fi

# Holds a listening socket on the port: the new instance has bound or taken over the sockets and accepts on them.
# (A health check on the port could be answered by the old instance, which shares the port.)
listening() { ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$1,"; }

log=${log:-$pidfile.$(date +%Y%m%d-%H%M%S).log}
setsid "$@" >"$log" 2>&1 &
new=$!
deadline=$((SECONDS + ready_timeout))
until listening "$new"; do
  if ! kill -0 "$new" 2>/dev/null; then
    echo "new instance $new exited before it listened on port $port; the old instance ${old:-(none)} keeps serving" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "new instance $new did not listen on port $port within ${ready_timeout}s; stopping it, the old instance ${old:-(none)} keeps serving" >&2
    kill -TERM "$new" 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
echo "$new" >"$pidfile"
echo "new instance $new listens on port $port"

if [ -n "$old" ]; then
  # SIGTERM: the old instance stops accepting, hands nothing back, drains its connections and exits.
  kill -TERM "$old"
  deadline=$((SECONDS + stop_timeout))
  while kill -0 "$old" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "old instance $old did not exit within ${stop_timeout}s; killing it" >&2
      kill -KILL "$old" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  echo "old instance $old stopped"
fi
