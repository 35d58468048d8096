#!/usr/bin/env bash
# Installs the Debian packages cohort needs to build, run and test.
# Checks first: a second run installs nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libssl-dev libinih-dev libsqlite3-dev libpq-dev libhiredis-dev
  libxxhash-dev libhttp-parser-dev libcmocka-dev
  liblua5.1-0-dev lua-cjson-dev lua-bitop-dev
  python3 python3-pytest python3-redis python3-pexpect python3-django-redis
  redis-server redis-tools postgresql
  iproute2 procps curl nodejs
)

# The npm packages of the end-to-end tests, each directory pinned by its
# package-lock.json: DIR:MODULE, where MODULE present means installed.
root=$(cd "$(dirname "$0")/.." && pwd)
npm_dirs=(
  tests/integration/socketio:@socket.io/redis-adapter   # socket.io across nodes
  tests/node:redis                                      # node-redis client-side caching
)
install_npm() {
  local entry dir module
  for entry in "${npm_dirs[@]}"; do
    dir=${entry%%:*}
    module=${entry#*:}
    if [ -d "$root/$dir/node_modules/$module" ]; then
      continue
    fi
    if ! command -v npm >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    echo "install-deps: npm ci in $dir" >&2
    (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  done
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
