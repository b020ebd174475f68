#!/usr/bin/env bash
# Several instances per endpoint (#16): the saturated echo (100 connections,
# 8 in flight, 64 B) on one core and on two, native baseline and wasock,
# alternating, ROUNDS times.
#
# - one core: the server on core 0 (native: one tokio worker; wasock:
#   bench/plugins/echo, one instance), the load client on core 1;
# - two cores: the server unpinned (native: two tokio workers; wasock: one
#   instance, then bench/instances-echo with two), and the load client
#   unpinned beside it: this machine has two cores, so the client takes
#   part of the second one and neither server can reach 2x.
#
# Then a CPU-bound plugin (bench/plugins/work: each text costs ~20 us of
# plugin work) with one instance and with two (bench/work-2), unpinned: the
# endpoint, not the network side, is the limit there.
#
# Reports msg/s and server CPU per message, and each server's two-core
# msg/s as a multiple of its one-core figure.
#
# Usage: bench/instances.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
rounds=${1:-3}
out=$(mktemp)

cargo build --release -p wasock -p wasock-bench >&2
target/release/wasock build bench/plugins >&2

start_server() { # $1 = pin prefix ("" for none), $2 = native|PLUGIN_DIR; prints "PID PORT"
    local log
    log=$(mktemp)
    if [ "$2" = native ]; then
        $1 target/release/native 127.0.0.1:0 >"$log" 2>&1 &
    else
        RUST_LOG=warn,wasock::cli=info $1 target/release/wasock serve \
            --listen 127.0.0.1:0 --no-watch "$2" >"$log" 2>&1 &
    fi
    local pid=$!
    local port
    port=$(listening_port "$log")
    echo "$pid $port"
}

run() { # $1 = label, $2 = server pin, $3 = client pin, $4 = native|PLUGIN_DIR, rest = load echo args
    local label=$1 server_pin=$2 client_pin=$3 server=$4
    shift 4
    read -r pid port < <(start_server "$server_pin" "$server")
    $client_pin target/release/load --url "ws://127.0.0.1:$port" --label "$label" \
        echo --conns 100 --inflight 8 --size 64 --secs 5 --pid "$pid" "$@" | tee -a "$out"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    run native-1core "taskset -c 0" "taskset -c 1" native
    run wasock-1core "taskset -c 0" "taskset -c 1" bench/plugins/echo
    run native-2core "" "" native
    run wasock-1inst-2core "" "" bench/plugins/echo
    run wasock-2inst-2core "" "" bench/instances-echo
    # The plugin's work, not the network side, is the limit here.
    run work-1inst-2core "" "" bench/plugins/work --path /work
    run work-2inst-2core "" "" bench/work-2 --path /work
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(label, key):
    vals = [r[key] for r in rows if r["label"] == label and key in r]
    return statistics.median(vals) if vals else float("nan")
labels = ["native-1core", "wasock-1core", "native-2core", "wasock-1inst-2core", "wasock-2inst-2core", "work-1inst-2core", "work-2inst-2core"]
bases = {"native": "native-1core", "wasock": "wasock-1core", "work": "work-1inst-2core"}
print("| server | msg/s | server CPU us/msg | x its one-core (work: one-instance) msg/s |")
print("|---|---|---|---|")
for label in labels:
    base = med(bases[label.split("-")[0]], "msgs_per_sec")
    m = med(label, "msgs_per_sec")
    print(f"| {label} | {m:.0f} | {med(label, 'server_us_per_msg'):.2f} | {m / base:.2f} |")
n2, w2 = med("native-2core", "msgs_per_sec"), med("wasock-2inst-2core", "msgs_per_sec")
print(f"\nwasock (2 instances) / native (2 workers), two cores: {w2 / n2:.2f}")
print(f"CPU-bound plugin, 2 instances / 1: {med('work-2inst-2core', 'msgs_per_sec') / med('work-1inst-2core', 'msgs_per_sec'):.2f}")
PY
