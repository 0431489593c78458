#!/usr/bin/env bash
# Runs Keel's whole test suite: a warning-free build, then every test (unit, store conformance,
# replay of golden histories, end-to-end with worker processes).
set -euo pipefail
cd "$(dirname "$0")/.."

build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log"
if grep -E '(^|: )warning: ' "$build_log" | grep -v '/.build/checkouts/' | grep -q .; then
    echo "error: the build has warnings (see above); Keel builds warning-free" >&2
    exit 1
fi
rm -f "$build_log"

swift test
