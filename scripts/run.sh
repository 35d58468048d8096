#!/usr/bin/env bash
# Installs what cohort needs, builds it, and runs one cohortd on loopback with
# the embedded defaults (RESP on 127.0.0.1:7379, HTTP on 127.0.0.1:7380).
# Any argument is passed to cohortd, e.g. scripts/run.sh --config etc/cohort.ini
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build >&2
exec build/cohortd "$@"
