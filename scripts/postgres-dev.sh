#!/usr/bin/env bash
# A throwaway PostgreSQL server for development and tests, from Debian's packages.
#
#   scripts/postgres-dev.sh start     # initdb (once) and start; prints the URL
#   scripts/postgres-dev.sh stop
#   scripts/postgres-dev.sh restart
#   scripts/postgres-dev.sh url
#
# PostgreSQL refuses to run as root, so when run as root the server runs as the `postgres` user.
# Settings: KEEL_PG_PORT (55432), KEEL_PG_DIR (/tmp/keel-postgres-$KEEL_PG_PORT). The role `keel`
# (password `keel`, may create databases) owns the database `keel`. Loopback only. The server logs
# to $KEEL_PG_DIR/server.log.
set -euo pipefail

port=${KEEL_PG_PORT:-55432}
dir=${KEEL_PG_DIR:-/tmp/keel-postgres-$port}
url="postgres://keel:keel@127.0.0.1:$port/keel"

bindir=""
if ! command -v initdb >/dev/null 2>&1; then
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && bindir="$candidate/"
    done
    if [ -z "$bindir" ]; then
        echo "PostgreSQL server binaries not found: install Debian's postgresql package" >&2
        exit 1
    fi
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

options="-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=500"

# Runs "$@" with nothing but stdin, stdout and stderr open. The server that pg_ctl leaves running
# would otherwise keep every descriptor this script inherited: a caller's pipe, or the socket on
# which Foundation's `Process` learns that its child exited, so the caller would wait for this
# script for as long as the server runs. (The server logs to $dir/server.log.)
without_inherited_fds() {
    (
        for path in /proc/$BASHPID/fd/*; do
            fd=${path##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        "$@"
    )
}

# Waits (up to 30 s) until the server answers a query.
wait_ready() {
    for _ in $(seq 1 150); do
        psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "PostgreSQL on port $port did not become ready; see $dir/server.log" >&2
    return 1
}

start() {
    if [ ! -f "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
        as_owner "${bindir}initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_owner "${bindir}pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        without_inherited_fds as_owner "${bindir}pg_ctl" -D "$dir" -w -l "$dir/server.log" -o "$options" start >/dev/null
    fi
    wait_ready
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc \
        "SELECT 1 FROM pg_roles WHERE rolname = 'keel'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE ROLE keel LOGIN PASSWORD 'keel' CREATEDB"
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc \
        "SELECT 1 FROM pg_database WHERE datname = 'keel'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE keel OWNER keel"
    echo "$url"
}

stop() {
    if [ -f "$dir/PG_VERSION" ]; then
        as_owner "${bindir}pg_ctl" -D "$dir" -w -m fast stop >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart)
        without_inherited_fds as_owner "${bindir}pg_ctl" -D "$dir" -w -m fast -l "$dir/server.log" -o "$options" restart >/dev/null
        wait_ready
        echo "$url" ;;
    url) echo "$url" ;;
    *) echo "usage: $0 start|stop|restart|url" >&2; exit 2 ;;
esac
