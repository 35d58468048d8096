#!/usr/bin/env bash
# Runs the deterministic simulator of the cluster (tests/sim) for many seeds.
#   scripts/simulate.sh --seeds 10000                 more seeds than CI runs
#   scripts/simulate.sh --first 42 --seeds 1 --verbose   replay one seed, with its trace
#   scripts/simulate.sh --faults crash,cut --seeds 500   only some fault kinds
#   scripts/simulate.sh --leases --seeds 5000 --warm  the lease and job-slot simulator
# Every option is passed to build/sim (see the top of tests/sim/sim.c), or,
# after --leases, to build/lease_sim (see the top of tests/sim/lease_sim.c).
# A failing seed prints itself and the command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build >&2
if [ "${1:-}" = "--leases" ]; then
    shift
    exec build/lease_sim "$@"
fi
exec build/sim "$@"
