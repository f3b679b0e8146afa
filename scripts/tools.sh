#!/usr/bin/env bash
# Tools the monitoring tests need: promtool (Debian's `prometheus` package) to
# check the Prometheus config, the alert rules, their unit tests and each
# service's /metrics. Idempotent: installs only what is missing.
#
# The package also ships the Prometheus server as a system service. The tests
# need only promtool, so the install runs with a policy that forbids starting
# services, and the service is disabled: nothing is left listening on :9090.
set -euo pipefail

log() { echo "tools: $*" >&2; }

command -v promtool >/dev/null 2>&1 && exit 0

export DEBIAN_FRONTEND=noninteractive
POLICY=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod +x "$POLICY" && own_policy=true
fi
trap '[ "$own_policy" = true ] && rm -f "$POLICY"' EXIT

log "installing promtool (Debian's prometheus package)"
# The package lists may be current already; refresh them only if that fails.
if ! apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -1 >&2
