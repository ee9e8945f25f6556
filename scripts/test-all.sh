#!/usr/bin/env bash
# Runs aett's whole test suite. Starts every server the tests need, runs all tests of every
# crate with every feature, and stops what it started.
#
# PostgreSQL: with AETT_POSTGRES_URL (and AETT_POSTGRES_CA_FILE for the TLS test) already set,
# that server is used; otherwise a throwaway cluster is created, and deleted afterwards.
# MongoDB: with AETT_MONGODB_URL already set (a replica set: the tests use transactions), that
# server is used; otherwise a throwaway SecantusDB server is started, and stopped afterwards.
# DynamoDB and S3: with AETT_DYNAMODB_ENDPOINT and AETT_S3_ENDPOINT already set, those endpoints
# are used; otherwise a throwaway moto server (both services on one port) is started
# (scripts/aws-test-server.sh), and stopped afterwards.
# The Python aett (for `aett import-python`): with AETT_PYTHON already set (a Python with PyPI
# `aett` 3.x and `psycopg`), that one is used; otherwise scripts/python-aett-env.sh installs one.
set -euo pipefail
cd "$(dirname "$0")/.."

stop_servers=()
stop_all() {
    for stop in "${stop_servers[@]}"; do
        $stop || true
    done
}
trap stop_all EXIT

if [ -z "${AETT_POSTGRES_URL:-}" ]; then
    scripts/postgres-test-server.sh start
    stop_servers+=("scripts/postgres-test-server.sh stop")
    export AETT_POSTGRES_URL="postgres://aett:aett@127.0.0.1:${AETT_PG_PORT:-54329}/aett"
    export AETT_POSTGRES_CA_FILE="${AETT_PG_CA_FILE:-/tmp/aett-test-postgres-ca.pem}"
fi
if [ -z "${AETT_MONGODB_URL:-}" ]; then
    scripts/mongodb-test-server.sh start
    stop_servers+=("scripts/mongodb-test-server.sh stop")
    export AETT_MONGODB_URL="mongodb://127.0.0.1:${AETT_MONGO_PORT:-27019}/?directConnection=true"
fi
if [ -z "${AETT_DYNAMODB_ENDPOINT:-}" ] || [ -z "${AETT_S3_ENDPOINT:-}" ]; then
    scripts/aws-test-server.sh start
    stop_servers+=("scripts/aws-test-server.sh stop")
    moto="http://127.0.0.1:${AETT_AWS_PORT:-5049}"
    export AETT_DYNAMODB_ENDPOINT="${AETT_DYNAMODB_ENDPOINT:-$moto}" AETT_S3_ENDPOINT="${AETT_S3_ENDPOINT:-$moto}"
fi
# The original Python aett, whose stores the tests of `aett import-python` write and import.
if [ -z "${AETT_PYTHON:-}" ]; then
    AETT_PYTHON=$(scripts/python-aett-env.sh)
    export AETT_PYTHON
fi
# The test server takes any credentials; tests that open a `dynamodb://` or `s3://` URL read them
# (and the region) through the AWS SDK's standard chain.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"

cargo test --locked --workspace --all-features
