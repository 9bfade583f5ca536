#!/usr/bin/env bash
# Installs the services the tests run against, when missing: Debian's
# clickhouse-server and redis-server. Needs root for
# apt-get; without it, prints what to install and lets strict tests fail
# with a clear message.
set -euo pipefail

missing=()
command -v clickhouse-server >/dev/null 2>&1 || missing+=(clickhouse-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "test-deps: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "test-deps: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
