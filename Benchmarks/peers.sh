#!/usr/bin/env bash
# Keel in the peers' harness: Temporal and DBOS (the harness in ../shared/peers) and `worker bench`
# on the same workloads, in one run, into one results file, printed as one table.
#
#   bash Benchmarks/peers.sh                                     # peers + Keel, W1-W5, one round
#   RUNS=2 bash Benchmarks/peers.sh                              # medians of two rounds
#   PEERS="" WORKLOADS="W2 W3" bash Benchmarks/peers.sh          # Keel alone
#
# Settings (environment):
#   PEERS_DIR      the harness (default: ../shared/peers beside the repository)
#   PEERS          the harness's configurations to run (its ONLY; default "ceilings dbos-pg temporal-best",
#                  the fastest of each peer; "" runs none)
#   WORKLOADS      default "W1 W2 W3 W4 W5"        RUNS   rounds (default 1)
#   KEEL_BACKENDS  default "sqlite postgres"       KEEL_MODES  default "in-process separate-worker"
#   PEERS_HOME     the harness's venvs and results (default /tmp/peers)
#
# The harness expects PostgreSQL on 127.0.0.1:5432 with the role root (password root): if nothing
# answers there, a throwaway server is started with scripts/postgres-dev.sh (and stopped at the end).
# Keel's PostgreSQL runs use the same server, each on a database of its own made for it and dropped
# after. Keel is built in release mode first. Records with tag "separate-worker" (the worker a
# separate `worker run` process, the bench only a client) are shown as peer "keel-separate-worker".
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
peers_dir="${PEERS_DIR:-$repo/../shared/peers}"
peers="${PEERS-ceilings dbos-pg temporal-best}"
workloads="${WORKLOADS-W1 W2 W3 W4 W5}"
runs="${RUNS:-1}"
backends="${KEEL_BACKENDS:-sqlite postgres}"
modes="${KEEL_MODES:-in-process separate-worker}"
export PEERS_HOME="${PEERS_HOME:-/tmp/peers}"
export PEERS_RESULTS="${PEERS_RESULTS:-$PEERS_HOME/results/keel-peers-$(date +%Y%m%d-%H%M%S).jsonl}"
mkdir -p "$(dirname "$PEERS_RESULTS")"

if [ ! -f "$peers_dir/run_all.sh" ]; then
    echo "the peers' harness is not at $peers_dir: set PEERS_DIR" >&2
    exit 2
fi

started_server=""
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    KEEL_PG_PORT=5432 bash "$repo/scripts/postgres-dev.sh" start >/dev/null
    started_server=1
fi
cleanup() {
    if [ -n "$started_server" ]; then KEEL_PG_PORT=5432 bash "$repo/scripts/postgres-dev.sh" stop; fi
}
trap cleanup EXIT
admin() { PGPASSWORD=root psql -h 127.0.0.1 -p 5432 -U root -d postgres -qtAc "$1"; }
if ! admin "SELECT 1" >/dev/null 2>&1; then
    psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -qc "CREATE ROLE root LOGIN PASSWORD 'root' CREATEDB"
fi

echo "== building worker (release)" >&2
(cd "$repo" && swift build -c release --product worker >"$PEERS_HOME/results/keel-build.log" 2>&1) || {
    echo "the release build failed; see $PEERS_HOME/results/keel-build.log" >&2
    exit 1
}
worker="$repo/.build/release/worker"

keel() {  # workload, backend, mode
    local options=() database=""
    [ "$3" = separate-worker ] && options+=(--separate-worker)
    if [ "$2" = postgres ]; then
        database="keel_bench_$(date +%s%N)"
        admin "CREATE DATABASE $database" >/dev/null
        options+=(--database "postgres://root:root@127.0.0.1:5432/$database")
    fi
    echo "== keel $1 $2 $3 ($(date +%T))" >&2
    "$worker" bench "$1" "${options[@]}" --results "$PEERS_RESULTS" >/dev/null ||
        echo "!! keel $1 $2 $3 failed" >&2
    if [ -n "$database" ]; then admin "DROP DATABASE $database WITH (FORCE)" >/dev/null; fi
}

if [ -n "$peers" ]; then
    ONLY="$peers" WORKLOADS="$workloads" RUNS="$runs" bash "$peers_dir/run_all.sh" >/dev/null
fi
for _ in $(seq 1 "$runs"); do
    for workload in $workloads; do
        for backend in $backends; do
            for mode in $modes; do keel "$workload" "$backend" "$mode"; done
        done
    done
done

# The harness's report groups by peer and backend: give the separate-worker records a peer of their own.
view="${PEERS_RESULTS%.jsonl}-table.jsonl"
python3 - "$PEERS_RESULTS" "$view" <<'PY'
import json, sys
with open(sys.argv[1]) as source, open(sys.argv[2], "w") as view:
    for line in source:
        record = json.loads(line)
        if record.get("peer") == "keel" and record.get("tag") == "separate-worker":
            record["peer"], record["tag"] = "keel-separate-worker", ""
        view.write(json.dumps(record) + "\n")
PY
echo "results: $PEERS_RESULTS"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(psql --version | head -1), $(date -u +%F)"
python3 "$peers_dir/report.py" "$view"
