#!/usr/bin/env bash
# Rolling deploy of an app that uses UseReusePortSockets(), on one port, with no proxy and no systemd:
# start the new instance, wait until it is ready (warm, and accepting on the port's sockets), then SIGTERM the old one.
#
#   sample/rolling-deploy.sh --pidfile /tmp/webapp.pid -- dotnet sample/WebApp/bin/Release/net10.0/WebApp.dll --urls http://127.0.0.1:5000
#
# The first run (no pidfile, or a dead pid in it) just starts the app. Every later run replaces the running instance.
# Readiness is what systemd's Type=notify uses: the app sends READY=1 to $NOTIFY_SOCKET once it has warmed up and
# accepts on the port, and this script is that socket (a small Perl listener). It is not "the pid holds a listening
# socket" or "the port answers": the old instance answers on the same port, and a cold instance is not ready.
# The new instance's output goes to --log (default: <pidfile>.<date-time>.log).
#
# --stop-timeout (35 s) is HostOptions.ShutdownTimeout (30 s, which bounds the old instance's drain) plus 5 s to exit;
# keep the two in step if you change either.
set -euo pipefail

usage() { echo "usage: $0 --pidfile FILE [--log FILE] [--ready-timeout SECONDS] [--stop-timeout SECONDS] -- COMMAND [ARGS...]" >&2; exit 2; }

pidfile= log= ready_timeout=60 stop_timeout=35
while [ $# -gt 0 ]; do
  case "$1" in
    --pidfile) pidfile=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --ready-timeout) ready_timeout=$2; shift 2 ;;
    --stop-timeout) stop_timeout=$2; shift 2 ;;
    --port) shift 2 ;;  # accepted for compatibility with earlier versions; readiness no longer needs the port
    --) shift; break ;;
    *) usage ;;
  esac
done
[ -n "$pidfile" ] && [ $# -gt 0 ] || usage
command -v perl >/dev/null || { echo "perl is needed to listen for READY=1" >&2; exit 2; }

# Whether a process runs: an exited one may linger as a zombie (kill -0 still succeeds) until its parent, or an init
# that reaps orphans, collects it.
alive() { local state; state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1; [ "${state%% *}" != Z ]; }

old=
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  alive "$old" || old=
fi

work=$(mktemp -d)
notify_socket="$work/notify.sock"
notify_log="$work/notify.log"
listener=
cleanup() { [ -n "$listener" ] && kill "$listener" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The notification socket: one line per datagram the app sends (READY=1, STATUS=..., STOPPING=1).
perl -MSocket -e '
  socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
  bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
  $| = 1; print "listening\n";
  while (defined recv($s, my $m, 4096, 0)) { $m =~ s/\n/ /g; print "$m\n"; }' "$notify_socket" >"$notify_log" &
listener=$!
until grep -q '^listening' "$notify_log" 2>/dev/null; do sleep 0.05; done

log=${log:-$pidfile.$(date +%Y%m%d-%H%M%S).log}
NOTIFY_SOCKET=$notify_socket setsid "$@" >"$log" 2>&1 &
new=$!
deadline=$((SECONDS + ready_timeout))
until grep -q 'READY=1' "$notify_log"; do
  if ! alive "$new"; then
    # A release whose warm-up failed says why in a STATUS= line before it exits.
    status=$(sed -n 's/.*STATUS=/: /p' "$notify_log" | tail -n 1)
    echo "new instance $new exited before it was ready${status}; the old instance ${old:-(none)} keeps serving (see $log)" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "new instance $new was not ready within ${ready_timeout}s; stopping it, the old instance ${old:-(none)} keeps serving" >&2
    kill -TERM "$new" 2>/dev/null || true
    exit 1
  fi
  sleep 0.05
done
echo "$new" >"$pidfile"
echo "new instance $new is ready: $(grep -m1 'READY=1' "$notify_log" | sed 's/.*STATUS=//')"

if [ -n "$old" ]; then
  # SIGTERM: the old instance stops accepting, drains its connections (each client is told to move on its next
  # request; idle ones are left until they leave) and exits, within HostOptions.ShutdownTimeout.
  kill -TERM "$old"
  deadline=$((SECONDS + stop_timeout))
  while alive "$old"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "old instance $old did not exit within ${stop_timeout}s; killing it" >&2
      kill -KILL "$old" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  echo "old instance $old stopped"
fi
