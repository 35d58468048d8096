#!/usr/bin/env bash
# Installs the Debian packages cohort needs to build, run and test, then the
# npm packages of the end-to-end tests (npm ci in each directory below).
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

# The directories of npm packages the end-to-end tests use, each pinned by
# its package-lock.json: socket.io across nodes, node-redis client-side
# caching, node-redis and ioredis with the write modes.
NPM_DIRS=(tests/integration/socketio tests/node tests/integration/node)

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

# npm ci in each directory, skipped while its node_modules was made from the
# same lock file (the stamp is our copy of the lock file it was made from).
# Debian's nodejs has npm in a package of its own; some builds bundle it.
root=$(cd "$(dirname "$0")/.." && pwd)
for dir in "${NPM_DIRS[@]}"; do
  d=$root/$dir
  if cmp -s "$d/package-lock.json" "$d/node_modules/.cohort-lock" 2>/dev/null; then
    continue
  fi
  if ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "install-deps: npm ci in $dir" >&2
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$d/package-lock.json" "$d/node_modules/.cohort-lock"
done
