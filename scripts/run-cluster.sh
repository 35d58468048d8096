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
# COHORT_BASE_PORT moves the nine ports (default 7379: n1 takes 7379-7381,
# n2 the same plus 10, n3 plus 20); COHORTD runs that binary instead of
# building build/cohortd.
#
# Try, in another terminal:
#   for p in 7379 7389 7399; do redis-cli -p $p set k v; done
#   redis-cli -p 7379 del k          # replies once n2 and n3 dropped k too
#   redis-cli -p 7389 get k          # (nil)
#   redis-cli -p 7379 cohort.members
set -euo pipefail
cd "$(dirname "$0")/.."
base=${COHORT_BASE_PORT:-7379}
cohortd=${COHORTD:-}
if [ -z "$cohortd" ]; then
    scripts/build.sh build >&2
    cohortd=build/cohortd
fi

dir=$(mktemp -d /tmp/cohort-cluster.XXXXXX)
pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap 'stop; exit 0' INT TERM # stopped as asked
trap stop EXIT                # any other end: a node that failed to start, say

mkdir -p "$dir/data" # the three nodes share one SQLite store: one leader among them
(umask 077 && head -c 48 /dev/urandom | base64 >"$dir/cluster.key")
for i in 1 2 3; do
    port=$((base + 10 * (i - 1)))
    cat >"$dir/n$i.ini" <<EOF
[node]
name = n$i
data_dir = $dir/data

[store]
url = sqlite://$dir/data/cohort.db

[client]
port = $port

[http]
port = $((port + 1))

[cluster]
bind = 127.0.0.1
port = $((port + 2))
key_file = $dir/cluster.key
peer = 127.0.0.1:$((base + 2))
peer = 127.0.0.1:$((base + 12))
peer = 127.0.0.1:$((base + 22))
EOF
    "$cohortd" --config "$dir/n$i.ini" > >(sed -u "s/^/[n$i] /") 2>&1 &
    pids+=("$!")
done
echo "three nodes: redis-cli -p $base / $((base + 10)) / $((base + 20)); Ctrl-C stops them" >&2
set +e
wait -n "${pids[@]}" # returns when the first node exits: then stop the others
rc=$?
echo "a node stopped (exit code $rc); stopping the others" >&2
exit "$rc"
