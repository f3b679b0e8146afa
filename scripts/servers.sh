#!/usr/bin/env bash
# Local servers for development and CI: RabbitMQ from Debian's packages and the
# dev store (FerretDB embedded in tools/ferretdb, SQLite backend).
# Idempotent: installs what is missing, starts what is not running, waits until
# both answer. Usage: scripts/servers.sh start|stop|status|store-binary
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${HOTLINE_DATA_DIR:-$ROOT/.data}"
CACHE="${HOTLINE_CACHE_DIR:-$HOME/.cache/hotline}"
FERRETDB_VERSION="v1.24.2"
# The binary's name carries a hash of what it is built from: a change rebuilds it.
FERRETDB_BIN="$CACHE/ferretdb-$FERRETDB_VERSION-$(cat "$ROOT"/tools/ferretdb/go.* "$ROOT"/tools/ferretdb/*.go "$ROOT"/tools/ferretdb/build.sh "$ROOT"/tools/ferretdb/patches/* | sha256sum | cut -c1-12)"
STORE_ADDR="127.0.0.1:27017"
RABBITMQ_ADDR="127.0.0.1:5672"
RABBITMQ_METRICS_ADDR="127.0.0.1:15692"

log() { echo "servers: $*" >&2; }

# shellcheck source=lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"

port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

wait_for() { # what, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 2))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up within ${secs}s"; return 1
}

install_rabbitmq() {
  command -v rabbitmq-server >/dev/null 2>&1 && return 0
  log "installing rabbitmq-server from Debian's packages"
  apt_install rabbitmq-server
}

start_rabbitmq() {
  install_rabbitmq
  if rabbitmq-diagnostics -q ping >/dev/null 2>&1; then return 0; fi
  log "starting rabbitmq"
  # Recorded before the start, so the node boots with the plugin.
  rabbitmq-plugins enable --offline rabbitmq_prometheus >/dev/null 2>&1 || true
  # The Debian package may start its own service on install; either way, ping decides.
  launch_rabbitmq >/dev/null 2>&1 || true
  wait_for rabbitmq 90 rabbitmq-diagnostics -q ping || { rabbitmq_diagnosis; return 1; }
  # ping answers once Erlang runs, before the broker has booted: wait for AMQP.
  # A first boot on a busy machine (installs running beside it) can be slow.
  wait_for "rabbitmq's AMQP listener" 180 port_open "$RABBITMQ_ADDR" || {
    rabbitmq_diagnosis; return 1; }
}

# Debian's wrapper switches to the rabbitmq user with su, whose login limits
# leave the node 1,024 file handles. A node holding more durable queues than
# that (a long-lived developer's broker) stalled in recovery for over ten
# minutes; with the hard limit it boots in seconds. RabbitMQ's guide asks for
# tens of thousands of handles in any case.
launch_rabbitmq() {
  local raise='ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true'
  if [ "$(id -u)" = 0 ] && id -u rabbitmq >/dev/null 2>&1 \
    && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    (cd /var/lib/rabbitmq && su rabbitmq -s /bin/sh -c \
      "$raise; exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached")
  else
    (eval "$raise"; rabbitmq-server -detached)
  fi
}

# What a failed start leaves to read, printed where CI shows it.
rabbitmq_diagnosis() {
  log "rabbitmq status:"
  rabbitmq-diagnostics -q status 2>&1 | head -40 >&2 || true
  log "the end of rabbitmq's log:"
  tail -n 40 /var/log/rabbitmq/*.log >&2 2>/dev/null || true
}

# Metrics of the broker on :15692, as the production image serves them, for
# a developer's Prometheus. Nothing depends on them (the monitoring tests run
# a node of their own with the plugin), so a host where they do not come up
# gets a warning, not a failure.
enable_rabbitmq_metrics() {
  if port_open "$RABBITMQ_METRICS_ADDR"; then return 0; fi
  log "enabling rabbitmq_prometheus (metrics on $RABBITMQ_METRICS_ADDR)"
  rabbitmq-plugins enable --online rabbitmq_prometheus >/dev/null 2>&1 || true
  if ! wait_for "rabbitmq metrics" 30 port_open "$RABBITMQ_METRICS_ADDR"; then
    log "warning: no broker metrics on $RABBITMQ_METRICS_ADDR (see rabbitmq-plugins list -e" \
      "and /var/log/rabbitmq); everything else works without them"
  fi
}

build_store() {
  [ -x "$FERRETDB_BIN" ] && return 0
  command -v go >/dev/null 2>&1 || { log "Go is needed to build the dev store"; return 1; }
  log "building FerretDB $FERRETDB_VERSION (first time only, about a minute)"
  mkdir -p "$CACHE"
  "$ROOT/tools/ferretdb/build.sh" "$FERRETDB_BIN.tmp" && mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
}

start_store() {
  if port_open "$STORE_ADDR"; then return 0; fi
  build_store
  mkdir -p "$DATA/ferretdb" "$DATA/log"
  log "starting the dev store on $STORE_ADDR (data in $DATA/ferretdb)"
  # Go's collector took a fifth of the dev store's CPU under load; at 400 it
  # runs about a quarter as often for a larger heap (tens of MB here).
  GOGC="${HOTLINE_STORE_GOGC:-400}" nohup "$FERRETDB_BIN" -listen "$STORE_ADDR" -dir "$DATA/ferretdb" \
    >>"$DATA/log/ferretdb.log" 2>&1 &
  echo $! >"$DATA/ferretdb.pid"
  wait_for "dev store" 30 port_open "$STORE_ADDR"
}

stop_all() {
  if [ -f "$DATA/ferretdb.pid" ]; then
    kill "$(cat "$DATA/ferretdb.pid")" 2>/dev/null || true
    rm -f "$DATA/ferretdb.pid"
  fi
  rabbitmqctl stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start_rabbitmq; enable_rabbitmq_metrics; start_store; log "rabbitmq and the dev store are up" ;;
  stop) stop_all ;;
  # For runs that start a store of their own (tests/servers.py): build if needed, print the path.
  store-binary) build_store >&2; echo "$FERRETDB_BIN" ;;
  status)
    rabbitmq-diagnostics -q ping >/dev/null 2>&1 && echo "rabbitmq: up" || echo "rabbitmq: down"
    port_open "$STORE_ADDR" && echo "store: up" || echo "store: down" ;;
  *) echo "usage: $0 start|stop|status|store-binary" >&2; exit 2 ;;
esac
