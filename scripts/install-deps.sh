#!/usr/bin/env bash
# Installs the Debian packages runbook_exporter needs to build, test and demo.
# Idempotent and quick when everything is present: dpkg is asked first, apt only for what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  prometheus-cpp-dev libpq-dev libhiredis-dev libcivetweb-dev libyaml-cpp-dev libspdlog-dev
  clang-format doctest-dev libssl-dev libcurl4-openssl-dev nlohmann-json3-dev libre2-dev zlib1g-dev
  postgresql-15 postgresql-client-15 postgresql-contrib pgbouncer redis-server openssl
  prometheus prometheus-alertmanager prometheus-blackbox-exporter
  prometheus-postgres-exporter prometheus-redis-exporter prometheus-pgbouncer-exporter
  curl procps util-linux iproute2 python3 python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql-common creates a cluster on install; we run our own throwaway clusters only.
if [ ! -e /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf; then
  $SUDO mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
$SUDO apt-get update -qq
# policy-rc.d keeps the packages' own services (redis, pgbouncer, prometheus) from starting.
had_policy=0
[ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ $had_policy -eq 0 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
