#!/usr/bin/env bash
# Runs a three-node cohort cluster on one machine, on loopback, until Ctrl-C.
#
# Installs what is missing and builds (as scripts/run.sh does), writes a fresh
# cluster key and three configs into a temporary directory, and starts:
#   node  RESP              HTTP              peer port
#   n1    127.0.0.1:7379    127.0.0.1:7380    127.0.0.1:7381
#   n2    127.0.0.1:7389    127.0.0.1:7390    127.0.0.1:7391
#   n3    127.0.0.1:7399    127.0.0.1:7400    127.0.0.1:7401
# Their logs go to the terminal, each line tagged with the node's name.
# Ctrl-C (or SIGTERM) stops all three and removes the directory.
#
# Try, in another terminal:
#   redis-cli -p 7389 set k v; redis-cli -p 7399 set k v
#   redis-cli -p 7379 del k          # replies once n2 and n3 dropped k too
#   redis-cli -p 7389 get k          # (nil)
#   redis-cli -p 7379 cohort.members
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build >&2

dir=$(mktemp -d /tmp/cohort-cluster.XXXXXX)
pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap stop INT TERM EXIT

(umask 077 && head -c 48 /dev/urandom | base64 >"$dir/cluster.key")
for i in 1 2 3; do
    base=$((7369 + 10 * i))
    cat >"$dir/n$i.ini" <<EOF
[node]
name = n$i

[client]
port = $base

[http]
port = $((base + 1))

[cluster]
bind = 127.0.0.1
port = $((base + 2))
key_file = $dir/cluster.key
peer = 127.0.0.1:7381
peer = 127.0.0.1:7391
peer = 127.0.0.1:7401
EOF
    build/cohortd --config "$dir/n$i.ini" > >(sed -u "s/^/[n$i] /") 2>&1 &
    pids+=("$!")
done
echo "three nodes: redis-cli -p 7379 / 7389 / 7399; Ctrl-C stops them" >&2
wait
