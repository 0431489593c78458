#!/usr/bin/env bash
# Runs Keel's whole test suite: a warning-free build, then every test (unit, store conformance on
# SQLite and PostgreSQL, replay of golden histories, end-to-end with worker processes).
#
# PostgreSQL: uses KEEL_TEST_POSTGRES_URL if set; otherwise starts a throwaway server with
# scripts/postgres-dev.sh (and stops it afterwards). Tests that need PostgreSQL fail without one.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${KEEL_TEST_POSTGRES_URL:-}" ]; then
    if KEEL_TEST_POSTGRES_URL=$(bash scripts/postgres-dev.sh start); then
        export KEEL_TEST_POSTGRES_URL
        trap 'bash scripts/postgres-dev.sh stop' EXIT
    else
        echo "warning: could not start PostgreSQL (scripts/postgres-dev.sh); its tests will fail" >&2
    fi
fi

build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log"
# Warnings in dependencies do not count: their sources (under .build/checkouts/) and their
# manifests ("warning: 'swift-distributed-tracing': found 1 file(s) which are unhandled").
if grep -E '(^|: )warning: ' "$build_log" | grep -v '/.build/checkouts/' \
    | grep -v -E "^warning: '[^']+': " | grep -q . \
    || grep -i -E "^warning: 'keel': " "$build_log" | grep -q .; then
    echo "error: the build has warnings (see above); Keel builds warning-free" >&2
    exit 1
fi
rm -f "$build_log"

# Each PostgreSQL test makes its own database; drop those earlier runs left behind (the unit
# tests drop theirs; end-to-end tests keep theirs for inspection until the next run).
if [ -n "${KEEL_TEST_POSTGRES_URL:-}" ]; then
    psql "$KEEL_TEST_POSTGRES_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'keel\_test\_%'" 2>/dev/null |
        while read -r name; do psql "$KEEL_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true; done
fi

# Two passes: the in-process tests, then the end-to-end tests that spawn worker processes and
# SIGKILL them at chosen moments. On a two-core machine the first pass's load would otherwise
# starve those workers and shift the moments their kills are meant to land in.
swift test --skip EndToEndTests
swift test --filter EndToEndTests
