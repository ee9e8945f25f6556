#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for aett's tests, on 127.0.0.1 only.
#
#   scripts/postgres-test-server.sh start   # install PostgreSQL if missing, create and start the
#                                           # cluster, print the connection URL's pieces
#   scripts/postgres-test-server.sh stop    # stop the cluster and delete it
#
# The cluster is separate from any other (its own name and port), uses a role and database
# `aett` (password `aett`), and serves TLS with a certificate from a CA generated for the run,
# whose certificate is written to $CA_FILE so the TLS tests can trust it.
set -euo pipefail

NAME=aett_test
PORT=${AETT_PG_PORT:-54329}
CA_FILE=${AETT_PG_CA_FILE:-/tmp/aett-test-postgres-ca.pem}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_installed() {
    if ! command -v pg_createcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        echo "PostgreSQL is not installed: installing Debian's postgresql package." >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    if ! command -v openssl >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    fi
}

version() {
    ls /usr/lib/postgresql | sort -V | tail -n 1
}

exists() {
    pg_lsclusters -h 2>/dev/null | awk '{print $1 " " $2}' | grep -qx "$1 $NAME"
}

make_certificates() {
    local dir=$1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=aett test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" >/dev/null 2>&1
    as_root chown postgres:postgres "$dir/server.key" "$dir/server.pem"
    as_root chmod 600 "$dir/server.key"
    cp "$dir/ca.pem" "$CA_FILE"
}

start() {
    ensure_installed
    local v
    v=$(version)
    if exists "$v"; then
        as_root pg_dropcluster --stop "$v" "$NAME"
    fi
    as_root pg_createcluster "$v" "$NAME" --port "$PORT" --start-conf manual >/dev/null
    local conf=/etc/postgresql/$v/$NAME
    local certs=/var/lib/postgresql/$v/$NAME-certs
    as_root mkdir -p "$certs"
    make_certificates "$certs"
    as_root tee -a "$conf/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
max_connections = 200
ssl = on
ssl_cert_file = '$certs/server.pem'
ssl_key_file = '$certs/server.key'
CONF
    as_root pg_ctlcluster "$v" "$NAME" start
    as_root runuser -u postgres -- psql -q -p "$PORT" -c "CREATE ROLE aett LOGIN PASSWORD 'aett'" >/dev/null
    as_root runuser -u postgres -- createdb -p "$PORT" -O aett aett
    echo "PostgreSQL $v test cluster '$NAME' running: postgres://aett:aett@127.0.0.1:$PORT/aett (CA: $CA_FILE)" >&2
}

stop() {
    local v
    v=$(version 2>/dev/null) || return 0
    if exists "$v"; then
        as_root pg_dropcluster --stop "$v" "$NAME"
        as_root rm -rf "/var/lib/postgresql/$v/$NAME-certs"
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
