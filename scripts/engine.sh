#!/usr/bin/env bash
# A container engine of the project's own for the compose test (make compose-test):
# Debian's docker.io daemon, started with no bridge network and no iptables rules
# (containers use the host's loopback through network_mode: host), Compose v5
# built from its Go module, and local images from Debian packages standing in for
# the ones docker-compose.yml names (no registry can be reached from here).
# Everything lives in $HOTLINE_CACHE_DIR (default ~/.cache/hotline), outside
# the repository: the daemon's data (images, volumes) in engine/data.
# Idempotent. Usage: scripts/engine.sh start|stop|status|compose|images|prepare|env
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${HOTLINE_CACHE_DIR:-$HOME/.cache/hotline}"
ENGINE="$CACHE/engine"
SOCKET="$ENGINE/docker.sock"
# Debian's client, of the daemon's own version (a newer client elsewhere on
# PATH, /usr/local/bin/docker, would also work, but this pair is what we install).
DOCKER=/usr/bin/docker
COMPOSE_VERSION="v5.6.0"
COMPOSE_BIN="$CACHE/bin/docker-compose-$COMPOSE_VERSION"
# A client configuration of our own whose cli-plugins/ holds Compose, so that
# `docker compose` is this build (nothing is changed in ~/.docker or /usr).
export DOCKER_CONFIG="$CACHE/docker-config"
BASE_IMAGE="hotline-local/debian:bookworm"
IMAGES="$ROOT/deploy/local/images"
export DOCKER_HOST="unix://$SOCKET"

log() { echo "engine: $*" >&2; }

# shellcheck source=lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"

docker() { "$DOCKER" "$@"; }

install_engine() {
  [ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] && command -v debootstrap >/dev/null && return 0
  log "installing docker.io and debootstrap from Debian's packages"
  # The package would start a system daemon (with a bridge and iptables rules):
  # a policy that forbids starting services keeps it from doing so.
  apt_install --no-services docker.io debootstrap
  # Nor may it start at the next boot: only the daemon below ever runs.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable docker.service docker.socket >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
      systemctl stop docker.service docker.socket >/dev/null 2>&1 || true
    fi
  fi
}

engine_up() { docker info >/dev/null 2>&1; }

start_engine() {
  install_engine
  engine_up && return 0
  mkdir -p "$ENGINE/data" "$ENGINE/exec"
  log "starting dockerd (no bridge, no iptables; data in $ENGINE/data)"
  # --bridge=none: no default network, so no private addresses and no NAT;
  # --iptables=false: the daemon never touches the host's firewall.
  nohup /usr/sbin/dockerd --host "$DOCKER_HOST" --data-root "$ENGINE/data" \
    --exec-root "$ENGINE/exec" --pidfile "$ENGINE/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    --userland-proxy=false >>"$ENGINE/dockerd.log" 2>&1 9>&- &
  for _ in $(seq 1 60); do
    engine_up && return 0
    sleep 0.5
  done
  log "dockerd did not answer within 30 s; its log: $ENGINE/dockerd.log"
  tail -5 "$ENGINE/dockerd.log" >&2 || true
  return 1
}

stop_engine() {
  [ -f "$ENGINE/dockerd.pid" ] || return 0
  kill "$(cat "$ENGINE/dockerd.pid")" 2>/dev/null || true
  rm -f "$ENGINE/dockerd.pid"
}

# Compose v5 (the `docker compose` of today, successor of v2), built once from
# its Go module with the machine's Go, and installed as the client's plugin.
build_compose() {
  if [ ! -x "$COMPOSE_BIN" ]; then compile_compose; fi
  mkdir -p "$DOCKER_CONFIG/cli-plugins"
  ln -sfn "$COMPOSE_BIN" "$DOCKER_CONFIG/cli-plugins/docker-compose"
  docker compose version | grep -q "$COMPOSE_VERSION" || {
    log "docker compose is not Compose $COMPOSE_VERSION"; return 1; }
}

compile_compose() {
  command -v go >/dev/null 2>&1 || { log "Go is needed to build Docker Compose"; return 1; }
  log "building Docker Compose $COMPOSE_VERSION (first time only, a few minutes)"
  mkdir -p "$CACHE/bin"
  local src
  # The module's own go.mod and go.sum pin every dependency.
  src="$(go mod download -json github.com/docker/compose/v5@"$COMPOSE_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  (cd "$src" && go build -trimpath -o "$COMPOSE_BIN.tmp" \
    -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" ./cmd)
  mv "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# A minimal Debian bookworm made here with debootstrap, imported as an image.
base_image() {
  image_exists "$BASE_IMAGE" && return 0
  log "making $BASE_IMAGE with debootstrap (about a minute)"
  local rootfs
  rootfs="$(mktemp -d)"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  # No service starts inside an image build (what Debian's packages would try).
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# docker build on the host's network (the daemon has no other), classic builder.
build() { # tag, context
  DOCKER_BUILDKIT=0 docker build -q --network host -t "$1" "$2" >/dev/null
}

# The context of an image: its Dockerfile and what it copies.
context_of() { # name -> directory
  local ctx="$CACHE/images/$1"
  rm -rf "$ctx" && mkdir -p "$ctx" && cp "$IMAGES/$1/Dockerfile" "$ctx/"
  echo "$ctx"
}

stand_in_images() {
  local ctx
  ctx="$(context_of python)" && mkdir -p "$ctx/certs"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/certs/" 2>/dev/null || true
  build python:3.11-slim "$ctx"
  build rabbitmq:3.13-management "$(context_of rabbitmq)"
  build prom/prometheus:v3.13.2 "$(context_of prometheus)"
  ctx="$(context_of store)"
  cp "$("$ROOT/scripts/servers.sh" store-binary)" "$ctx/hotline-ferretdb"
  build hotline-local/store:latest "$ctx"
}

# hotline:latest is this checkout's code: the compose test builds it under its
# machine lock (another checkout's tests may share this engine). A preparation
# builds the same layers under another tag, so that build finds them cached.
images() { # tag of the project's image
  base_image
  stand_in_images
  log "building $1 from the Dockerfile"
  build "$1" "$ROOT"
}

# One preparation at a time: `make test` starts one in the background, and the
# compose test's own calls wait for it here, then find everything built. (The
# daemon is started with the lock's descriptor closed, or it would hold it.)
serialize() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/engine.lock"
  flock 9
}

case "${1:-start}" in
  start) serialize; start_engine ;;
  stop) stop_engine ;;
  status) engine_up && echo "engine: up ($DOCKER_HOST)" || echo "engine: down" ;;
  compose) serialize; build_compose >&2 ;;
  images) serialize; start_engine; images hotline:latest ;;
  prepare) serialize; start_engine; build_compose; images hotline-local/prepared:latest ;;
  # eval "$(scripts/engine.sh env)"; then `docker compose ...` as an operator would.
  env) echo "export DOCKER_HOST=$DOCKER_HOST DOCKER_CONFIG=$DOCKER_CONFIG" ;;
  *) echo "usage: $0 start|stop|status|compose|images|prepare|env" >&2; exit 2 ;;
esac
