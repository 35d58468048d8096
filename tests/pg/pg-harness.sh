#!/usr/bin/env bash
# pg-harness.sh: a throwaway PostgreSQL server for cohort's tests.
#
#   pg-harness.sh start          initdb into a new temporary directory, start a
#                                server on 127.0.0.1 (a free port in 20000-31999),
#                                create database cohort_test, print its URL.
#                                The directory is printed on stderr; pass it back
#                                as COHORT_PG_DIR to the other commands.
#   pg-harness.sh url            print the URL again
#   pg-harness.sh pause|resume   stop / start the server, keeping its data
#   pg-harness.sh freeze|thaw    SIGSTOP / SIGCONT the server's processes (by
#                                pid: the postmaster and its children), so it
#                                accepts connections but answers nothing
#   pg-harness.sh stop           stop the server and remove the directory
#   pg-harness.sh run CMD ARGS   start, run CMD with COHORT_TEST_PG_URL,
#                                COHORT_PG_DIR and COHORT_TEST_PG_HARNESS set,
#                                stop (also when CMD fails); exit with CMD's status
#
# Runs Debian's postgresql 15 binaries as the unprivileged `postgres` user when
# started as root (as the current user otherwise). Listens only on 127.0.0.1
# (and a unix socket inside the directory); trust authentication, which is
# fine for a loopback-only server that lives as long as one test run.
set -euo pipefail

BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
self=$(readlink -f "$0")

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

need_dir() {
  if [ -z "${COHORT_PG_DIR:-}" ] || [ ! -f "$COHORT_PG_DIR/url" ]; then
    echo "pg-harness: COHORT_PG_DIR does not name a running harness" >&2
    exit 2
  fi
}

port_free() {
  ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

server_start() {
  as_pg "$BIN/pg_ctl" -D "$COHORT_PG_DIR/data" -l "$COHORT_PG_DIR/log" -w -t 60 \
    -o "-p $(cat "$COHORT_PG_DIR/port")" start >/dev/null
}

# Creates the directory and starts the server; sets COHORT_PG_DIR.
setup_server() {
  if [ ! -x "$BIN/initdb" ]; then
    echo "pg-harness: $BIN/initdb not found (apt-get install postgresql)" >&2
    exit 2
  fi
  COHORT_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cohort-pg.XXXXXX")
  export COHORT_PG_DIR
  chmod 0755 "$COHORT_PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$COHORT_PG_DIR"; fi
  as_pg "$BIN/initdb" -D "$COHORT_PG_DIR/data" -U cohort --auth=trust -E UTF8 \
    --no-instructions >"$COHORT_PG_DIR/initdb.log" 2>&1 || {
    cat "$COHORT_PG_DIR/initdb.log" >&2
    rm -rf "$COHORT_PG_DIR"
    exit 1
  }
  cat >>"$COHORT_PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$COHORT_PG_DIR'
fsync = off
max_connections = 50
CONF
  local tries=0 port
  while :; do
    port=$((20000 + RANDOM % 12000))
    if port_free "$port"; then
      echo "$port" | as_pg tee "$COHORT_PG_DIR/port" >/dev/null
      if server_start; then break; fi
    fi
    tries=$((tries + 1))
    if [ $tries -ge 10 ]; then
      echo "pg-harness: could not start postgresql" >&2
      cat "$COHORT_PG_DIR/log" >&2 || true
      rm -rf "$COHORT_PG_DIR"
      exit 1
    fi
  done
  as_pg "$BIN/createdb" -h 127.0.0.1 -p "$port" -U cohort cohort_test
  echo "postgresql://cohort@127.0.0.1:$port/cohort_test" | as_pg tee "$COHORT_PG_DIR/url" >/dev/null
}

cmd_start() {
  setup_server
  echo "pg-harness: COHORT_PG_DIR=$COHORT_PG_DIR" >&2
  cat "$COHORT_PG_DIR/url"
}

cmd_stop() {
  need_dir
  kill -CONT $(server_pids) 2>/dev/null || true
  as_pg "$BIN/pg_ctl" -D "$COHORT_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$COHORT_PG_DIR"
}

# The postmaster's pid and its children's.
server_pids() {
  local pm
  [ -f "$COHORT_PG_DIR/data/postmaster.pid" ] || return 0
  pm=$(head -n1 "$COHORT_PG_DIR/data/postmaster.pid")
  echo "$pm" $(pgrep -P "$pm" || true)
}

cmd_run() {
  trap 'if [ -n "${COHORT_PG_DIR:-}" ]; then cmd_stop; fi' EXIT
  trap 'exit 143' TERM INT # so that the EXIT trap runs
  setup_server
  COHORT_TEST_PG_URL=$(cat "$COHORT_PG_DIR/url")
  export COHORT_PG_DIR COHORT_TEST_PG_URL COHORT_TEST_PG_HARNESS=$self
  set +e
  "$@"
  local rc=$?
  set -e
  exit $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) need_dir; cat "$COHORT_PG_DIR/url" ;;
  pause) need_dir; as_pg "$BIN/pg_ctl" -D "$COHORT_PG_DIR/data" -m fast -w stop >/dev/null ;;
  resume) need_dir; server_start ;;
  freeze) need_dir; kill -STOP $(server_pids) ;;
  thaw) need_dir; kill -CONT $(server_pids) ;;
  run) shift; cmd_run "$@" ;;
  *) echo "usage: pg-harness.sh start|stop|url|pause|resume|freeze|thaw|run CMD..." >&2; exit 2 ;;
esac
