#!/usr/bin/env bash
# A throwaway MongoDB-compatible server for aett's tests (SecantusDB, from PyPI), on 127.0.0.1.
#
#   scripts/mongodb-test-server.sh start   # install SecantusDB into a virtual environment if
#                                          # missing, start it, wait until it answers `ping`,
#                                          # print the connection URL
#   scripts/mongodb-test-server.sh stop    # stop it (by its PID) and delete its data
#
# Real MongoDB cannot be installed on the machines this project is built on; SecantusDB speaks
# MongoDB's wire protocol on WiredTiger and presents itself as a single-node replica set, so
# multi-document transactions work.
set -euo pipefail

PORT=${AETT_MONGO_PORT:-27019}
VENV=${AETT_MONGO_VENV:-/tmp/aett-mongodb-venv}
# In memory where the machine has a tmpfs: the server syncs each write to disk, which makes a
# write take about 17 ms on /tmp against 1.5 ms on /dev/shm, and the data is thrown away anyway.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    DATA=${AETT_MONGO_DATA:-/dev/shm/aett-mongodb-data}
else
    DATA=${AETT_MONGO_DATA:-/tmp/aett-mongodb-data}
fi
PIDFILE=${AETT_MONGO_PIDFILE:-/tmp/aett-mongodb.pid}
LOG=${AETT_MONGO_LOG:-/tmp/aett-mongodb.log}
VERSION=0.7.0b3

ensure_installed() {
    if [ ! -x "$VENV/bin/secantusd-py" ]; then
        echo "Installing SecantusDB $VERSION into $VENV." >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet "SecantusDB==$VERSION"
    fi
}

ping() {
    "$VENV/bin/python" - "$PORT" <<'PY'
import sys
from pymongo import MongoClient
client = MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true", serverSelectionTimeoutMS=500)
client.admin.command("ping")
PY
}

start() {
    ensure_installed
    stop >/dev/null 2>&1 || true
    rm -rf "$DATA" && mkdir -p "$DATA"
    "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$PORT" --storage-path "$DATA" \
        --cache-size 256M >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
        if ping >/dev/null 2>&1; then
            echo "MongoDB-compatible test server (SecantusDB $VERSION) running: mongodb://127.0.0.1:$PORT/?directConnection=true"
            return 0
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "the server exited; its log ($LOG):" >&2
            cat "$LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the server did not answer ping within 10 s; its log ($LOG):" >&2
    cat "$LOG" >&2
    return 1
}

stop() {
    if [ -f "$PIDFILE" ]; then
        kill "$(cat "$PIDFILE")" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$PIDFILE"
    fi
    rm -rf "$DATA"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
