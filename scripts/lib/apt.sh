# Sourced by the scripts that install Debian packages (servers, tools, browser,
# engine). `make test` runs the engine's preparation in the background beside
# the others, and two apt-get runs at once fail on dpkg's lock: every install
# here takes one machine-wide lock and waits for it, and waits for dpkg's own
# lock too, in case apt runs outside these scripts.
APT_LOCK=/var/lock/hotline-apt.lock

# apt_install [--no-services] PACKAGE...
# --no-services: a policy forbids the packages to start their services during
# the install (a system daemon we do not want), and is removed afterwards
# unless it was there before.
apt_install() {
  local no_services=false
  if [ "${1:-}" = --no-services ]; then no_services=true; shift; fi
  (
    flock -w 1800 9 || { echo "apt: another install held $APT_LOCK for 30 min" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    local policy=/usr/sbin/policy-rc.d own_policy=false
    if [ "$no_services" = true ] && [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=true
    fi
    trap '[ "$own_policy" = true ] && rm -f "$policy"' EXIT
    local apt=(apt-get -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends)
    # The package lists may be current already; refresh them only if that fails.
    if ! "${apt[@]}" install "$@" >/dev/null 2>&1; then
      "${apt[@]}" update >/dev/null
      "${apt[@]}" install "$@" >/dev/null
    fi
  ) 9>"$APT_LOCK"
}
