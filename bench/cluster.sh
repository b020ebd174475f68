#!/usr/bin/env bash
# Many nodes (#16): a topic of 10 000 sessions (bench/plugins/topic) on one
# wasock node against the same topic split over two nodes joined through a
# real nats-server (--cluster; half the receivers on each, the sender on the
# first); then the delivery latency to one receiver, paced (a message every
# 5 ms), same node against across nodes. Alternating, ROUNDS times. Every
# process is unpinned: two nodes, NATS and the load client share this
# machine's two cores.
#
# Usage: bench/cluster.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
rounds=${1:-3}
out=$(mktemp)
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)

cargo build --release -p wasock -p wasock-bench >&2
target/release/wasock build bench/plugins >&2

nats_log=$(mktemp)
"$nats_bin" -a 127.0.0.1 -p -1 >"$nats_log" 2>&1 &
nats_pid=$!
trap 'kill $nats_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "Listening for client connections" "$nats_log" && break; sleep 0.1; done
nats_url="nats://127.0.0.1:$(grep -o "client connections on [0-9.:]*" "$nats_log" | sed 's/.*://')"

start_node() { # $@ = extra serve args; prints "PID PORT"
    local log
    log=$(mktemp)
    RUST_LOG=warn,wasock::cli=info target/release/wasock serve \
        --listen 127.0.0.1:0 --no-watch "$@" bench/plugins/topic >"$log" 2>&1 &
    local pid=$!
    echo "$pid $(listening_port "$log")"
}

run() { # $1 = 1|2 nodes, rest = fanout args
    local nodes=$1; shift
    read -r pid_a port_a < <(start_node --cluster "$nats_url")
    local second=() pids=("$pid_a")
    if [ "$nodes" = 2 ]; then
        read -r pid_b port_b < <(start_node --cluster "$nats_url")
        second=(--second "ws://127.0.0.1:$port_b")
        pids+=("$pid_b")
    fi
    target/release/load --url "ws://127.0.0.1:$port_a" --label "wasock-$nodes" \
        fanout --path /topic "${second[@]}" "$@" | tee -a "$out"
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for nodes in 1 2; do
        run "$nodes" --receivers 9999 --messages 50
        run "$nodes" --receivers 1 --messages 400 --interval-ms 5
    done
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(nodes, receivers, key):
    vals = [r[key] for r in rows if r["nodes"] == nodes and r["receivers"] == receivers]
    return statistics.median(vals) if vals else float("nan")
print("| | one node | two nodes | two / one |")
print("|---|---|---|---|")
for receivers, key, name in [
    (9999, "deliveries_per_sec", "topic of 10 000: deliveries/s"),
    (9999, "p50_us", "topic of 10 000: time to the last receiver p50 us"),
    (9999, "p99_us", "topic of 10 000: time to the last receiver p99 us"),
    (1, "p50_us", "paced, one receiver (same node / other node): p50 us"),
    (1, "p99_us", "paced, one receiver (same node / other node): p99 us"),
]:
    one, two = med(1, receivers, key), med(2, receivers, key)
    print(f"| {name} | {one:.0f} | {two:.0f} | {two / one:.2f} |")
PY
