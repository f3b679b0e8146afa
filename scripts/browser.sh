#!/usr/bin/env bash
# Headless Chromium for the dashboard test (tests/e2e/test_dashboard.py), from
# Debian's packages: chromium, its WebDriver (chromium-driver) and a CJK font so
# the Chinese page renders as text, not boxes, in the screenshot.
# Idempotent: installs only what is missing; nothing is downloaded at test time
# (Selenium is pointed at /usr/bin/chromedriver, never at Selenium Manager).
set -euo pipefail

log() { echo "browser: $*" >&2; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then missing+=(fonts-noto-cjk); fi
[ ${#missing[@]} -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
log "installing ${missing[*]} from Debian's packages"
# The package lists may be current already; refresh them only if that fails.
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/chromium --version >&2
