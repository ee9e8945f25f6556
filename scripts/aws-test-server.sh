#!/usr/bin/env bash
# A throwaway AWS-compatible server for aett's DynamoDB and S3 tests (moto in server mode, from
# PyPI), on 127.0.0.1.
#
#   scripts/aws-test-server.sh start   # install moto into a virtual environment if missing,
#                                      # start it, wait until it answers, print the endpoint
#   scripts/aws-test-server.sh stop    # stop it (by its PID)
#
# Any credentials work; state lives in the server's memory and goes with it.
set -euo pipefail

PORT=${AETT_AWS_PORT:-5049}
VENV=${AETT_AWS_VENV:-/tmp/aett-moto-venv}
PIDFILE=${AETT_AWS_PIDFILE:-/tmp/aett-moto.pid}
LOG=${AETT_AWS_LOG:-/tmp/aett-moto.log}
VERSION=5.2.5
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ensure_installed() {
    if [ ! -x "$VENV/bin/moto_server" ]; then
        echo "Installing moto $VERSION into $VENV." >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet "moto[server]==$VERSION"
    fi
}

answers() {
    "$VENV/bin/python" - "$PORT" <<'PY'
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=0.5).read()
PY
}

start() {
    ensure_installed
    stop >/dev/null 2>&1 || true
    # moto's own server, handling one request at a time (see scripts/moto_server.py for why).
    "$VENV/bin/python" "$HERE/moto_server.py" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
        if answers >/dev/null 2>&1; then
            echo "AWS-compatible test server (moto $VERSION) running: http://127.0.0.1:$PORT"
            return 0
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "the server exited; its log ($LOG):" >&2
            cat "$LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the server did not answer within 10 s; its log ($LOG):" >&2
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
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
