#!/usr/bin/env bash
# Installs the Debian packages cohort needs to build, run and test.
# Checks first: a second run installs nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libssl-dev libinih-dev libsqlite3-dev libpq-dev libhiredis-dev
  libxxhash-dev libhttp-parser-dev libcmocka-dev
  liblua5.1-0-dev lua-cjson-dev lua-bitop-dev
  python3 python3-pytest python3-redis python3-pexpect
  redis-server redis-tools postgresql
  iproute2 procps curl nodejs
)

# The npm packages of the end-to-end tests (node-redis, for client-side
# caching), pinned by tests/node/package-lock.json, into tests/node/node_modules.
root=$(cd "$(dirname "$0")/.." && pwd)
install_npm() {
  if [ -d "$root/tests/node/node_modules/redis" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "install-deps: npm packages of tests/node" >&2
  (cd "$root/tests/node" && npm ci --no-audit --no-fund --silent)
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  install_npm
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts redis-server and postgresql as services on install; cohort's
# tests and benchmarks start their own on loopback ports, so neither is needed.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
install_npm
