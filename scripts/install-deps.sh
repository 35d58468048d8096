#!/usr/bin/env bash
# Installs the Debian packages cohort needs to build, run and test, then the
# npm packages of the end-to-end tests (tests/integration/node: npm ci).
# Checks first: a second run installs nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libssl-dev libinih-dev libsqlite3-dev libpq-dev libhiredis-dev
  libxxhash-dev libhttp-parser-dev libcmocka-dev
  liblua5.1-0-dev lua-cjson-dev lua-bitop-dev
  python3 python3-pytest python3-redis python3-pexpect
  redis-server redis-tools postgresql
  python3-django python3-django-redis nodejs
  iproute2 procps curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
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
fi

# npm packages of the end-to-end tests (node-redis, ioredis), exactly as
# package-lock.json says; skipped while node_modules matches the lock file
# (npm ci writes node_modules/.package-lock.json; the stamp is our own copy
# of the lock file it was made from).
node_dir=$(cd "$(dirname "$0")/.." && pwd)/tests/integration/node
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.cohort-lock" 2>/dev/null; then
  echo "install-deps: npm ci in tests/integration/node" >&2
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$node_dir/package-lock.json" "$node_dir/node_modules/.cohort-lock"
fi
