#!/usr/bin/env bash
# Starts the five services as background processes (logs in .run/logs) and waits
# until each answers /readyz; the workbench last, with the demo keys it and its
# users need (.run/demo-keys, issued once and again whenever the store lost them).
# Usage: scripts/run.sh start|stop|status|endpoints
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="$ROOT/.run"
BIN="$ROOT/.venv/bin"
declare -A PORTS=([intake]=8001 [router]=8002 [notifier]=8003 [stats]=8004 [workbench]=8005)
SERVICES=(intake router notifier stats workbench)
KEYS="$RUN/demo-keys"

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

ready() { "$BIN/python" - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
except Exception:
    sys.exit(1)
PY
}

launch() {
  local svc=$1
  if running "$svc"; then return; fi
  # A demo environment: staff may move every service's clock (POST /v1/clock on
  # the router) to watch deadlines pass; production settings refuse this.
  HOTLINE_ENVIRONMENT="${HOTLINE_ENVIRONMENT:-demo}" \
  HOTLINE_CLOCK_OFFSET_FILE="${HOTLINE_CLOCK_OFFSET_FILE:-$RUN/clock-offset}" \
  HOTLINE_HTTP_PORT="${PORTS[$svc]}" nohup "$BIN/hotline" "$svc" >>"$RUN/logs/$svc.log" 2>&1 &
  echo $! >"$RUN/$svc.pid"
}

await_ready() {
  local svc=$1
  for _ in $(seq 1 60); do ready "${PORTS[$svc]}" && break; sleep 0.5; done
  ready "${PORTS[$svc]}" || { echo "$svc did not become ready; see $RUN/logs/$svc.log" >&2; exit 1; }
  echo "$svc ready on http://127.0.0.1:${PORTS[$svc]} (logs: .run/logs/$svc.log)"
}

issue() { "$BIN/hotline" keys issue "$@" | sed -n 's/^key: *//p'; }

key_of() { sed -n "s/^$1=//p" "$KEYS"; }

# One key per role for the demo and the workbench's web channel key; kept
# while the router still knows them (a wiped store forgets every key).
demo_keys() {
  if [ -f "$KEYS" ] && "$BIN/python" - "${PORTS[router]}" "$(key_of KEY_STAFF)" <<'PY'
import sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/v1/whoami"
try:
    urllib.request.urlopen(urllib.request.Request(url, headers={"X-API-Key": sys.argv[2]}), timeout=2)
except Exception:
    sys.exit(1)
PY
  then return; fi
  ( umask 077
    { echo "KEY_STAFF=$(issue --staff demo.dispatcher)"
      echo "KEY_DEPARTMENT=$(issue --department guanxian.water)"
      echo "KEY_AGENT=$(issue --agent seat-001)"
      echo "KEY_WEB=$(issue --channel web)"
    } >"$KEYS" )
}

start() {
  mkdir -p "$RUN/logs"
  for svc in intake router notifier stats; do launch "$svc"; done
  for svc in intake router notifier stats; do await_ready "$svc"; done
  demo_keys
  HOTLINE_WEB_CHANNEL_KEY="$(key_of KEY_WEB)" launch workbench
  await_ready workbench
}

# The same ports as docker-compose.yml publishes (a test keeps them in step).
endpoints() {
  cat <<EOF
Endpoints (the same in the docker-compose stack):
  intake    http://127.0.0.1:${PORTS[intake]}/v1/tickets   API docs http://127.0.0.1:${PORTS[intake]}/docs
  router    http://127.0.0.1:${PORTS[router]}/v1/tickets   API docs http://127.0.0.1:${PORTS[router]}/docs
  notifier  http://127.0.0.1:${PORTS[notifier]}/v1/deliveries
  stats     http://127.0.0.1:${PORTS[stats]}/ (dashboard)   http://127.0.0.1:${PORTS[stats]}/v1/stats/summary
  workbench http://127.0.0.1:${PORTS[workbench]}/ (sign in)   citizens http://127.0.0.1:${PORTS[workbench]}/citizen
  metrics   /metrics on each service port; health /healthz, readiness /readyz
Every API and the dashboard need an API key (the demo printed a staff key above):
  .venv/bin/hotline keys issue --staff NAME | --department UNIT_ID | --agent SEAT | --channel NAME
Local services listen on 127.0.0.1 only (HOTLINE_HTTP_HOST).
Notices: the directory points every department's webhook at 127.0.0.1:9900, where
only a running "hotline demo" listens; after it ends nothing does, and each
notice is retried (see GET /v1/deliveries on the notifier) until it is dead.
Move time on this demo stack (staff key): curl -X POST -H "X-API-Key: \$KEY"
  -H 'Content-Type: application/json' -d '{"advance_hours": 24}' http://127.0.0.1:${PORTS[router]}/v1/clock
Only in the docker-compose stack:
  Prometheus http://127.0.0.1:9090   Grafana http://127.0.0.1:3000   RabbitMQ management http://127.0.0.1:15672
EOF
  if [ -f "$KEYS" ]; then
    echo "Workbench demo keys (paste one into http://127.0.0.1:${PORTS[workbench]}/signin; kept in .run/demo-keys):"
    echo "  staff (dispatcher, supervisor)   $(key_of KEY_STAFF)"
    echo "  department 冠县水务集团           $(key_of KEY_DEPARTMENT)"
    echo "  agent seat-001 (坐席)            $(key_of KEY_AGENT)"
  fi
}

stop() {
  for svc in "${SERVICES[@]}"; do
    if running "$svc"; then kill "$(cat "$RUN/$svc.pid")"; fi
    rm -f "$RUN/$svc.pid"
  done
}

case "${1:-start}" in
  start) start ;;
  endpoints) endpoints ;;
  stop) stop ;;
  status) for svc in "${SERVICES[@]}"; do running "$svc" && echo "$svc: running" || echo "$svc: stopped"; done ;;
  *) echo "usage: $0 start|stop|status|endpoints" >&2; exit 2 ;;
esac
