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

# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
log "installing ${missing[*]} from Debian's packages"
apt_install "${missing[@]}"
/usr/bin/chromium --version >&2
