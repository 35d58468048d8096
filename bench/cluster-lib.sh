# shellcheck shell=bash
# cluster-lib.sh: what the bench/cluster-* scripts share. Sourced, never run.
#
# Owns: a cohort cluster of N cohortd processes on 127.0.0.1 (key file,
# one INI per node listing every node, start, restart, convergence wait),
# the do-it-yourself invalidation bus for comparison (one redis-server as the
# bus, one redis-server per node as its cache, one subscriber per node), and
# building bench/cluster-probe.c.
# Never: talks to anything but 127.0.0.1, or leaves a process behind: every
# process goes through bench_track (lib.sh), which kills it by pid on exit.
#
# After cluster_start N: NODE_NAME[i], NODE_PORT[i] (client), NODE_HTTP[i],
# NODE_CPORT[i] (peer link), NODE_PID[i], NODE_LOG[i] for i in 0..N-1, and
# NODE_PORTS (client ports, comma-separated).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_NAME=()
NODE_PORT=()
NODE_HTTP=()
NODE_CPORT=()
NODE_PID=()
NODE_LOG=()
NODE_PORTS=""
NODE_OPTIONS=()

cluster_check() {
    bench_check_binaries
    if cohortd_is_redis; then
        bench_die "the cluster benchmarks need cohortd ($COHORTD is redis-server)"
    fi
}

# cluster_build_probe: compiles cluster-probe.c; sets CPROBE (pinned to the
# client CPU) and CPROBE_SERVER (pinned to the server CPU, for subscribers).
cluster_build_probe() {
    cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
        -o "$BENCH_TMP/cluster-probe" "$BENCH_DIR/cluster-probe.c" -lhiredis -lpthread ||
        bench_die "cannot compile $BENCH_DIR/cluster-probe.c (needs libhiredis-dev)"
    CPROBE=("${PIN_CLIENT[@]}" "$BENCH_TMP/cluster-probe")
    CPROBE_SERVER=("${PIN_SERVER[@]}" "$BENCH_TMP/cluster-probe")
}

# cluster_node_start I: starts node I from its INI (written by cluster_start).
cluster_node_start() {
    local i=$1 pid
    "${PIN_SERVER[@]}" "$COHORTD" --config "$BENCH_TMP/${NODE_NAME[$i]}.ini" \
        >>"${NODE_LOG[$i]}" 2>&1 </dev/null &
    pid=$!
    disown "$pid" # a kill -9 of it is part of some benchmarks: no job notice
    bench_track "$pid"
    NODE_PID[i]=$pid
    bench_wait_ready "${NODE_PORT[$i]}" "$pid" "${NODE_LOG[$i]}" ||
        bench_die "node ${NODE_NAME[$i]} did not start"
}

# cluster_wait_converged: every node sees every other alive and serves,
# within CONVERGE_SECONDS (default 20).
cluster_wait_converged() {
    local t=${CONVERGE_SECONDS:-20}
    "${CPROBE[@]}" converged -P "$NODE_PORTS" -t "$t" ||
        { tail -n 15 "${NODE_LOG[@]}" >&2; bench_die "the cluster did not converge within $t s"; }
}

# cluster_start N: writes the key and the INIs and starts N nodes. Extra
# [cluster] settings can be put in NODE_OPTIONS ("key = value" lines) before,
# and other sections too ("[cache]" then its lines), except [store]: the
# nodes share one SQLite store in the run's directory (not the default
# /var/lib/cohort, which other runs and other clusters use too).
# Hooks, both optional: CLUSTER_PEER_HOOK names a function called as
# "HOOK I J" that prints the "peer = ..." line of node I's INI for node J
# (nothing: no line), e.g. a proxy's address; CLUSTER_PRE_START_HOOK names a
# function called once the ports are chosen, before the INIs are written.
CLUSTER_PEER_HOOK=""
CLUSTER_PRE_START_HOOK=""
cluster_start() {
    local n=$1 i j key="$BENCH_TMP/cluster.key" peers=() ini
    (umask 077 && head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key")
    chmod 600 "$key"
    for ((i = 0; i < n; i++)); do
        NODE_NAME[i]="n$((i + 1))"
        NODE_PORT[i]=$(bench_free_port)
        NODE_HTTP[i]=$(bench_free_port)
        NODE_CPORT[i]=$(bench_free_port)
        NODE_LOG[i]="$BENCH_TMP/${NODE_NAME[$i]}.log"
        peers+=("peer = 127.0.0.1:${NODE_CPORT[$i]}")
    done
    NODE_PORTS=$(IFS=,; echo "${NODE_PORT[*]}")
    [ -z "$CLUSTER_PRE_START_HOOK" ] || "$CLUSTER_PRE_START_HOOK"
    for ((i = 0; i < n; i++)); do
        ini="$BENCH_TMP/${NODE_NAME[$i]}.ini"
        {
            echo "[node]"
            echo "name = ${NODE_NAME[$i]}"
            echo "[client]"
            echo "bind = 127.0.0.1"
            echo "port = ${NODE_PORT[$i]}"
            echo "[http]"
            echo "bind = 127.0.0.1"
            echo "port = ${NODE_HTTP[$i]}"
            echo "[cluster]"
            echo "bind = 127.0.0.1"
            echo "port = ${NODE_CPORT[$i]}"
            echo "key_file = $key"
            if [ -n "$CLUSTER_PEER_HOOK" ]; then
                for ((j = 0; j < n; j++)); do "$CLUSTER_PEER_HOOK" "$i" "$j"; done
            else
                for j in "${peers[@]}"; do echo "$j"; done
            fi
            for j in "${NODE_OPTIONS[@]}"; do echo "$j"; done
            echo "[store]" # one store for the cluster, private to this run
            echo "url = sqlite://$BENCH_TMP/store.db"
        } >"$ini"
    done
    for ((i = 0; i < n; i++)); do
        cluster_node_start "$i"
    done
    cluster_wait_converged
    echo "cluster: $n cohortd nodes on 127.0.0.1, client ports $NODE_PORTS; each runs:"
    echo "  $COHORTD --config $BENCH_TMP/nI.ini   ([cluster] lists all $n peers; key 48 bytes, mode 0600)"
}

# cluster_stop_all: stops every node (SIGTERM, bounded wait).
cluster_stop_all() {
    local pid
    for pid in "${NODE_PID[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${NODE_PID[@]}"; do
        bench_stop_pid "$pid"
    done
    NODE_PID=()
}

# cluster_alive: true when every node still runs; otherwise prints its log.
cluster_alive() {
    local i ok=0
    for i in "${!NODE_PID[@]}"; do
        if ! kill -0 "${NODE_PID[$i]}" 2>/dev/null; then
            echo "FAILURE: node ${NODE_NAME[$i]} is no longer running; last lines of its log:" >&2
            tail -20 "${NODE_LOG[$i]}" >&2
            ok=1
        fi
    done
    return $ok
}

# bus_start N: a redis-server bus (BUS_PORT), N cache redis-servers
# (CACHE_PORTS, comma-separated) and N subscribers (cluster-probe subscriber,
# pinned with the servers).
BUS_SUB_PIDS=()
BUS_N=0
bus_start() {
    local n=$1 i ports=() pid
    BUS_N=$n
    bench_start redis BUS
    for ((i = 0; i < n; i++)); do
        bench_start redis "CACHE$i"
        local pv="CACHE${i}_PORT"
        ports+=("${!pv}")
    done
    CACHE_PORTS=$(IFS=,; echo "${ports[*]}")
    for ((i = 0; i < n; i++)); do
        "${CPROBE_SERVER[@]}" subscriber -b "$BUS_PORT" -c "${ports[$i]}" -t 600 \
            >"$BENCH_TMP/subscriber$i.log" 2>&1 </dev/null &
        pid=$!
        bench_track "$pid"
        BUS_SUB_PIDS+=("$pid")
    done
    echo "bus: redis-server on $BUS_PORT ($BUS_CMD); caches: redis-servers on $CACHE_PORTS;"
    echo "  $n subscribers: cluster-probe subscriber -b $BUS_PORT -c CACHE (SUBSCRIBE, DEL on its cache,"
    echo "  messages already buffered applied as one pipeline)"
}

bus_stop() {
    local pid i
    bench_cli "$BUS_PORT" PUBLISH cohort-bench-inval q >/dev/null 2>&1 || true
    for pid in "${BUS_SUB_PIDS[@]}"; do
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        bench_untrack "$pid"
    done
    BUS_SUB_PIDS=()
    bench_stop BUS
    for ((i = 0; i < BUS_N; i++)); do
        bench_stop "CACHE$i"
    done
    BUS_N=0
}

# kv FILE NAME: the value of a "name value" line of cluster-probe's output.
kv() {
    awk -v k="$2" '$1 == k {print $2; exit}' "$1"
}
