#!/usr/bin/env bash
# Starts the four services as background processes (logs in .run/logs) and waits
# until each answers /readyz. Usage: scripts/run.sh start|stop|status
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="$ROOT/.run"
BIN="$ROOT/.venv/bin"
declare -A PORTS=([intake]=8001 [router]=8002 [notifier]=8003 [stats]=8004)
SERVICES=(intake router notifier stats)

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

ready() { "$BIN/python" - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
except Exception:
    sys.exit(1)
PY
}

start() {
  mkdir -p "$RUN/logs"
  for svc in "${SERVICES[@]}"; do
    if running "$svc"; then continue; fi
    HOTLINE_HTTP_PORT="${PORTS[$svc]}" nohup "$BIN/hotline" "$svc" >>"$RUN/logs/$svc.log" 2>&1 &
    echo $! >"$RUN/$svc.pid"
  done
  for svc in "${SERVICES[@]}"; do
    for _ in $(seq 1 60); do ready "${PORTS[$svc]}" && break; sleep 0.5; done
    ready "${PORTS[$svc]}" || { echo "$svc did not become ready; see $RUN/logs/$svc.log" >&2; exit 1; }
    echo "$svc ready on http://127.0.0.1:${PORTS[$svc]} (logs: .run/logs/$svc.log)"
  done
}

stop() {
  for svc in "${SERVICES[@]}"; do
    if running "$svc"; then kill "$(cat "$RUN/$svc.pid")"; fi
    rm -f "$RUN/$svc.pid"
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) for svc in "${SERVICES[@]}"; do running "$svc" && echo "$svc: running" || echo "$svc: stopped"; done ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
