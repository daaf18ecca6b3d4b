#!/usr/bin/env bash
# Benchmarks `raftkv serve` with stock tools: `redis-benchmark -t get,set -c 50 -n 200000`
# against a 3-node cluster per backend and against one non-replicated `redis-server` (the upper
# bound), in the same run; then the seed's conflict workload (WATCH/GET/MULTI/SET/EXEC on hot
# keys while other clients GET) with the lease and with the seed bug switched on.
#
# Installs Debian's redis-tools and redis-server when missing (root). Usage:
#   bash raftkv/bench/serve-bench.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/../.."

requests=${1:-200000}
if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server >/dev/null
fi

target=${CARGO_TARGET_DIR:-target}
# RAFTKV_BIN: an already built release binary (skips the build).
if [ -z "${RAFTKV_BIN:-}" ]; then
    cargo build --release -p raftkv --quiet
fi
raftkv=${RAFTKV_BIN:-$target/release/raftkv}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

bench() { # port label
    echo "== $2"
    redis-benchmark -p "$1" -t get,set -c 50 -n "$requests" -q --precision 3 2>&1 | tr '\r' '\n' | grep -E 'requests per second' | sed 's/^/   /'
}

for backend in openraft raftrs; do
    "$raftkv" cluster --nodes 3 --backend "$backend" --insecure --data-dir "$work/$backend" >"$work/$backend.out" 2>&1 &
    pid=$!
    pids+=("$pid")
    leader=""
    for _ in $(seq 1 100); do
        for port in $(grep -o 'redis-cli -p [0-9]*' "$work/$backend.out" 2>/dev/null | awk '{print $3}'); do
            if redis-cli -p "$port" INFO replication 2>/dev/null | grep -q '^raft_role:leader'; then leader=$port; fi
        done
        [ -n "$leader" ] && break
        sleep 0.1
    done
    [ -n "$leader" ] || { echo "no leader for $backend"; cat "$work/$backend.out"; exit 1; }
    bench "$leader" "raftkv serve, 3 nodes, $backend (leader port)"
    redis-cli -p "$leader" INFO lease | grep -E '^(lease_hit_rate|reads_fast|reads_slow):' | sed 's/^/   /'
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
bench "$port" "redis-server $(redis-server --version | grep -o 'v=[0-9.]*'), single node, no replication"

if [ -n "${SKIP_STORM:-}" ]; then exit 0; fi
echo "== conflict workload: GET latency with the lease, and with the seed bug switched on"
cargo test --release -p raftkv --test serve_e2e --quiet -- storm_keeps_the_lease --nocapture 2>&1 \
    | grep -E '^(openraft|raftrs) ' | sed 's/^/   /'
