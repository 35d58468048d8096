# shellcheck shell=bash
# lib.sh: what every script in bench/ shares. Sourced, never run.
#
# Owns: the temporary directory of a run and every process a script starts
# (all are killed by pid and the directory removed on exit), starting
# cohortd and redis-server on free loopback ports, CPU pinning, building the
# C helpers (loader.c, latency-probe.c), the machine description, and small
# helpers (INFO fields, VmRSS, medians).
# Never: talks to anything but 127.0.0.1, kills a process it did not start,
# or leaves a process or file behind.
#
# Environment:
#   COHORTD         path of the cohortd binary (default /work/main/build/cohortd).
#                   A redis-server binary is accepted in its place, to check the
#                   scripts themselves; the output then says so.
#   COHORTD_ARGS    extra flags for cohortd (words split on spaces).
#   REDIS_SERVER    path of redis-server (default: the one on PATH).
#   BENCH_NO_PIN=1  do not pin processes to CPUs.
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   the CPUs to pin to (default 0 and 1).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_DIR/.." && pwd)
COHORTD=${COHORTD:-$BENCH_REPO/build/cohortd}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
BENCH_TMP=""
BENCH_PIDS=()

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then # the nodes' logs, for a look after the run
            echo "kept $BENCH_TMP" >&2
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
}

# bench_init: makes the temporary directory and installs the exit trap.
bench_init() {
    BENCH_TMP=$(mktemp -d /tmp/cohort-bench.XXXXXX)
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if [ -z "${BENCH_NO_PIN:-}" ] && command -v taskset >/dev/null 2>&1 &&
        [ "$(nproc)" -ge 2 ]; then
        BENCH_SERVER_CPU=${BENCH_SERVER_CPU:-0}
        BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
        PIN_SERVER=(taskset -c "$BENCH_SERVER_CPU")
        PIN_CLIENT=(taskset -c "$BENCH_CLIENT_CPU")
        BENCH_PINNING="servers on CPU $BENCH_SERVER_CPU, clients on CPU $BENCH_CLIENT_CPU (taskset)"
    else
        PIN_SERVER=()
        PIN_CLIENT=()
        BENCH_PINNING="none"
    fi
}

bench_die() {
    echo "error: $*" >&2
    exit 1
}

# bench_count FLAG VALUE: prints VALUE if it is a whole number > 0, else dies.
bench_count() {
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || bench_die "$1 needs a whole number above 0, not '${2:-}'"
    echo "$2"
}

# bench_track PID: kill PID on exit.
bench_track() {
    BENCH_PIDS+=("$1")
}

# bench_untrack PID
bench_untrack() {
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    BENCH_PIDS=("${keep[@]}")
}

# cohortd_is_redis: true when COHORTD is in fact a redis-server binary.
cohortd_is_redis() {
    case "$("$COHORTD" --version 2>/dev/null || true)" in
    "Redis server"*) return 0 ;;
    *) return 1 ;;
    esac
}

bench_check_binaries() {
    if [ -z "$REDIS_SERVER" ] || [ ! -x "$REDIS_SERVER" ]; then
        bench_die "redis-server not found (apt-get install redis-server)"
    fi
    command -v redis-benchmark >/dev/null || bench_die "redis-benchmark not found (apt-get install redis-tools)"
    command -v redis-cli >/dev/null || bench_die "redis-cli not found (apt-get install redis-tools)"
    command -v cc >/dev/null || bench_die "cc not found"
    [ -x "$COHORTD" ] || bench_die "cohortd not found at $COHORTD (build it, set COHORTD, or COHORTD=\$(command -v redis-server) to check the scripts)"
}

# bench_build: compiles the C helpers into the temporary directory.
bench_build() {
    local src
    for src in loader latency-probe; do
        cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
            -o "$BENCH_TMP/$src" "$BENCH_DIR/$src.c" -lhiredis ||
            bench_die "cannot compile $BENCH_DIR/$src.c (needs libhiredis-dev)"
    done
    # shellcheck disable=SC2034 # used by the scripts that source this file
    LOADER=(nice -n 10 "${PIN_CLIENT[@]}" "$BENCH_TMP/loader")
    # shellcheck disable=SC2034
    PROBE=("${PIN_CLIENT[@]}" "$BENCH_TMP/latency-probe")
}

bench_git_rev() {
    local rev dirty=""
    rev=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null) || rev="no commit yet"
    if [ -n "$(git -C "$BENCH_REPO" status --porcelain -- src 2>/dev/null | head -1)" ]; then
        dirty=" (src/ has uncommitted changes)"
    fi
    echo "$rev$dirty"
}

# bench_machine TITLE: prints what the figures were measured on.
bench_machine() {
    local cpu mem cohort_desc
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    if cohortd_is_redis; then
        cohort_desc="$COHORTD -- a redis-server standing in for cohortd: these figures check the scripts, they do not measure cohortd"
    else
        cohort_desc="$COHORTD ($("$COHORTD" --version 2>/dev/null | head -1 || echo "version unknown"))"
    fi
    echo "== $1"
    echo "date:         $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu:          ${cpu:-unknown}"
    echo "cores:        $(nproc) online"
    echo "memory:       $mem"
    echo "kernel:       $(uname -sr)"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {exit !(l > 0.7)}'; then
        echo "warning:      the machine is busy with other work: throughput is lower and latency"
        echo "              includes time spent waiting for a CPU; compare the two servers, not runs"
    fi
    echo "redis-server: $("$REDIS_SERVER" --version)"
    echo "cohort git:   $(bench_git_rev)"
    echo "cohortd:      $cohort_desc"
    echo "pinning:      $BENCH_PINNING"
    echo
}

# bench_free_port: prints a loopback TCP port no socket uses, below the
# kernel's ephemeral range (so no outgoing connection takes it meanwhile).
bench_free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((12000 + RANDOM % 20000))
        if command -v ss >/dev/null 2>&1; then
            [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] || continue
        fi
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    bench_die "no free port found"
}

# bench_wait_ready PORT PID LOG: waits up to 10 s for PING to answer.
bench_wait_ready() {
    local port=$1 pid=$2 log=$3
    for _ in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server on port $port exited during start-up; its log:" >&2
            tail -20 "$log" >&2
            return 1
        fi
        if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = "PONG" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "server on port $port did not answer PING within 10 s; its log:" >&2
    tail -20 "$log" >&2
    return 1
}

# bench_start KIND NAME [MAXMEMORY]: starts cohortd (KIND cohortd) or
# redis-server (KIND redis) on free ports, pinned to the server CPU, and sets
# NAME_PID, NAME_PORT, NAME_HTTP (cohortd's HTTP port, or empty), NAME_LOG
# and NAME_CMD (the exact command line).
bench_start() {
    local kind=$1 name=$2 maxmem=${3:-} port http="" log cmd=() pid
    port=$(bench_free_port)
    log="$BENCH_TMP/$name.log"
    if [ "$kind" = cohortd ] && ! cohortd_is_redis; then
        http=$(bench_free_port)
        cmd=("$COHORTD" --port "$port" --http-port "$http" --bind 127.0.0.1)
        [ -n "$maxmem" ] && cmd+=(--maxmemory "$maxmem")
        # shellcheck disable=SC2206
        [ -n "${COHORTD_ARGS:-}" ] && cmd+=($COHORTD_ARGS)
    else
        local bin=$REDIS_SERVER
        [ "$kind" = cohortd ] && bin=$COHORTD
        cmd=("$bin" --save "" --appendonly no --port "$port" --bind 127.0.0.1
            --daemonize no --logfile "")
        [ -n "$maxmem" ] && cmd+=(--maxmemory "$maxmem")
    fi
    "${PIN_SERVER[@]}" "${cmd[@]}" >"$log" 2>&1 </dev/null &
    pid=$!
    bench_track "$pid"
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_HTTP" '%s' "$http"
    printf -v "${name}_LOG" '%s' "$log"
    printf -v "${name}_CMD" '%s' "$(printf '%q ' "${cmd[@]}")"
    bench_wait_ready "$port" "$pid" "$log" || bench_die "could not start: ${cmd[*]}"
}

# bench_stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
bench_stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    bench_untrack "$pid"
}

# bench_stop NAME: stops a server started by bench_start.
bench_stop() {
    local pidvar="${1}_PID"
    bench_stop_pid "${!pidvar}"
}

# bench_alive NAME: true while the server runs; otherwise prints its log
# tail (the first time only).
bench_alive() {
    local pidvar="${1}_PID" logvar="${1}_LOG" cmdvar="${1}_CMD" deadvar="${1}_DEAD"
    if kill -0 "${!pidvar}" 2>/dev/null; then
        return 0
    fi
    [ -z "${!deadvar:-}" ] || return 1
    printf -v "$deadvar" 1
    local st=0
    wait "${!pidvar}" 2>/dev/null || st=$?
    echo "FAILURE: $1 (${!cmdvar}) is no longer running (exit status $st); last lines of its log:" >&2
    tail -20 "${!logvar}" >&2
    return 1
}

bench_cli() {
    local port=$1
    shift
    timeout 30 redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# bench_info PORT FIELD: prints one INFO field, or "n/a".
bench_info() {
    local v
    v=$(bench_cli "$1" INFO 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2; exit}')
    echo "${v:-n/a}"
}

# bench_rss_kb PID: prints VmRSS in kB.
bench_rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# bench_cpu_ticks PID: user+system CPU of a process so far, in clock ticks
# (getconf CLK_TCK a second); 0 when it is gone.
bench_cpu_ticks() {
    { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || echo; } | awk '{print $12 + $13 + 0}'
}

# bench_median: the median of the numbers on stdin, one a line.
bench_median() {
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B: A/B to two decimals, or n/a.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# bench_kv FILE NAME: the value of a "name value" line written by latency-probe.
bench_kv() {
    awk -v k="$2" '$1 == k {print $2; exit}' "$1"
}
