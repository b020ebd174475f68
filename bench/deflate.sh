#!/usr/bin/env bash
# The compressed chat scenario (#15): JSON-like chat messages of 200-2000
# bytes echoed by wasock (bench/plugins/echo, and bench/deflate-echo with
# permessage-deflate on), Node's `ws` and Bun, each with compression off and
# on, alternating, ROUNDS times; server on core 0, client (bench/src/bin/
# chat.rs, one client for all) on core 1. Reports bytes on the wire per
# message, server CPU per message and RSS per idle connection (each idle
# connection has exchanged one message first, so its contexts were used),
# and a chat room: the same messages broadcast to RECEIVERS members on
# /broadcast (plugins/broadcast; bench/deflate-broadcast), server CPU per
# delivery.
#
# Usage: bench/deflate.sh [ROUNDS] [IDLE_CONNS] [RECEIVERS]   (defaults 3, 5000, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
rounds=${1:-3}
idle=${2:-5000}
receivers=${3:-1000}
out=$(mktemp)

cargo build --release -p wasock -p wasock-bench >&2
target/release/wasock build bench/plugins plugins/broadcast >&2
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error) >&2
(cd bench/bun && npm ci --no-audit --no-fund --loglevel=error) >&2
bun=bench/bun/node_modules/@oven/bun-linux-x64/bin/bun

pin_server="taskset -c 0"
pin_client="taskset -c 1"
if [ "$(nproc)" -lt 2 ]; then pin_server=""; pin_client=""; fi

start_server() { # $1 = wasock|node|bun, $2 = 0|1 (deflate); prints "PID PORT"
    local log
    log=$(mktemp)
    case $1 in
    wasock)
        local plugins=(bench/plugins/echo plugins/broadcast)
        if [ "$2" = 1 ]; then plugins=(bench/deflate-echo bench/deflate-broadcast); fi
        RUST_LOG=warn,wasock::cli=info $pin_server target/release/wasock serve \
            --listen 127.0.0.1:0 --no-watch "${plugins[@]}" >"$log" 2>&1 &
        ;;
    node) DEFLATE=$2 $pin_server node bench/node/server.js >"$log" 2>&1 & ;;
    bun) DEFLATE=$2 $pin_server "$bun" bench/bun/server.js >"$log" 2>&1 & ;;
    esac
    local pid=$!
    local port
    port=$(listening_port "$log")
    echo "$pid $port"
}

run() { # $1 = label, $2 = deflate 0|1, rest = scenario
    local label=$1 deflate=$2; shift 2
    read -r pid port < <(start_server "$label" "$deflate")
    local offer=()
    if [ "$deflate" = 1 ]; then offer=(--deflate); fi
    $pin_client target/release/chat --addr "127.0.0.1:$port" --label "$label" "${offer[@]}" "$@" --pid "$pid" | tee -a "$out"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for label in wasock node bun; do
        for deflate in 0 1; do
            run "$label" "$deflate" chat --conns 100 --inflight 4 --secs 5
            run "$label" "$deflate" room --receivers "$receivers" --secs 5
        done
    done
done
for label in wasock node bun; do
    for deflate in 0 1; do
        run "$label" "$deflate" idle --conns "$idle"
    done
done

python3 - "$out" "$receivers" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(scenario, label, deflate, key):
    vals = [r[key] for r in rows if r["scenario"] == scenario and r["label"] == label and r["offered"] == deflate and key in r]
    return statistics.median(vals) if vals else float("nan")
labels = ["wasock", "node", "bun"]
print("| metric | " + " | ".join(f"{l} off | {l} on" for l in labels) + " |")
print("|---" * (1 + 2 * len(labels)) + "|")
for scenario, key, name in [
    ("chat", "deflate", "permessage-deflate negotiated (1 = yes)"),
    ("chat", "msgs_per_sec", "chat msg/s (100 conns, 4 in flight)"),
    ("chat", "payload_bytes_per_msg", "payload bytes per message (sent)"),
    ("chat", "wire_bytes_per_msg", "bytes on the wire per echoed message (both ways)"),
    ("chat", "server_us_per_msg", "server CPU us per message"),
    ("chat-idle", "kib_per_conn", "RSS KiB per idle connection"),
    ("room", "deliveries_per_sec", f"room: deliveries/s (one sender, {sys.argv[2]} members)"),
    ("room", "server_us_per_delivery", "room: server CPU us per delivery"),
]:
    cells = [f"{med(scenario, l, d, key):.1f}" for l in labels for d in (False, True)]
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
