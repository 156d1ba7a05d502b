#!/usr/bin/env bash
# Installs the distribution packages Fleetscope's tests, demo and benchmarks run for real:
# Prometheus (with promtool), Redis, PostgreSQL, memcached, HAProxy (the demo's load
# balancer, with its built-in Prometheus exporter), and wrk (the real-server benchmark's load
# generator). As root it uses apt-get; otherwise it says what is missing
# and carries on.
set -euo pipefail

packages=(prometheus redis-server postgresql memcached haproxy wrk)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "Installing distribution packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Missing distribution packages: ${missing[*]}" >&2
    echo "Install them (e.g. sudo apt-get install ${missing[*]}) or tests that need them fail." >&2
  fi
fi

# Debian starts these services on install where it can; Fleetscope starts its own
# instances on free ports, so stop the packaged ones to keep the machine quiet.
for svc in prometheus redis-server postgresql memcached haproxy; do
  if command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done

if ! command -v go >/dev/null; then
  echo "Go is not installed: the collector cannot be built. Install Go >= 1.24 or set" >&2
  echo "FLEETSCOPE_OTELCOL to an official otelcol-contrib binary." >&2
fi
