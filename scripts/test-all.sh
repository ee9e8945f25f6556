#!/usr/bin/env bash
# Runs aett's whole test suite. Starts every server the tests need, runs all tests of every
# crate with every feature, and stops what it started.
#
# PostgreSQL: with AETT_POSTGRES_URL (and AETT_POSTGRES_CA_FILE for the TLS test) already set,
# that server is used; otherwise a throwaway cluster is created, and deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${AETT_POSTGRES_URL:-}" ]; then
    scripts/postgres-test-server.sh start
    trap 'scripts/postgres-test-server.sh stop' EXIT
    export AETT_POSTGRES_URL="postgres://aett:aett@127.0.0.1:${AETT_PG_PORT:-54329}/aett"
    export AETT_POSTGRES_CA_FILE="${AETT_PG_CA_FILE:-/tmp/aett-test-postgres-ca.pem}"
fi

cargo test --locked --workspace --all-features
