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

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
log "installing promtool (Debian's prometheus package)"
apt_install --no-services prometheus
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -1 >&2
