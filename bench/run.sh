#!/usr/bin/env bash
# Runs every load scenario against the native baseline and against wasock
# (bundled Rust plugins), alternating, ROUNDS times, with the server pinned
# to core 0 and the load client to core 1. Prints one JSON line per run and
# a markdown table of medians with the wasock/native ratio. When Node.js is
# installed, Node's `ws` server (bench/node) and Bun (bench/bun, the npm
# package @oven/bun-linux-x64, pinned) run too, as third and fourth columns.
#
# Then the per-language figures (component size, cold compile, cached
# load, instantiation, per-message cost; see src/bin/languages.rs).
#
# Usage: bench/run.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
rounds=${1:-3}
out=$(mktemp)

cargo build --release -p wasock -p wasock-bench >&2
target/release/wasock build plugins >&2
target/release/wasock build bench/plugins >&2 # its own run: it reuses the route /echo

labels="native wasock"
if command -v node >/dev/null; then
    (cd bench/node && npm ci --no-audit --no-fund --loglevel=error) >&2
    (cd bench/bun && npm ci --no-audit --no-fund --loglevel=error) >&2
    labels="$labels node bun"
fi
bun=bench/bun/node_modules/@oven/bun-linux-x64/bin/bun

pin_server="taskset -c 0"
pin_client="taskset -c 1"
if [ "$(nproc)" -lt 2 ]; then pin_server=""; pin_client=""; fi

start_server() { # $1 = native|wasock|node|bun; prints "PID PORT"
    local log
    log=$(mktemp)
    if [ "$1" = native ]; then
        $pin_server target/release/native 127.0.0.1:0 >"$log" 2>&1 &
    elif [ "$1" = node ]; then
        $pin_server node bench/node/server.js >"$log" 2>&1 &
    elif [ "$1" = bun ]; then
        $pin_server "$bun" bench/bun/server.js >"$log" 2>&1 &
    else
        RUST_LOG=warn,wasock::cli=info $pin_server target/release/wasock serve \
            --listen 127.0.0.1:0 --no-watch bench/plugins/echo bench/plugins/topic plugins/broadcast >"$log" 2>&1 &
    fi
    local pid=$!
    local port
    port=$(listening_port "$log")
    echo "$pid $port"
}

run() { # $1 = label, rest = scenario args (echo, fanout and idle get the server's pid)
    local label=$1; shift
    read -r pid port < <(start_server "$label")
    local with_pid=()
    case $1 in echo | fanout | idle) with_pid=(--pid "$pid") ;; esac
    $pin_client target/release/load --url "ws://127.0.0.1:$port" --label "$label" "$@" "${with_pid[@]}" | tee -a "$out"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for label in $labels; do
        run "$label" echo --conns 100 --inflight 8 --size 64 --secs 5
        # Latency and CPU at a fixed load below every server's capacity
        # (paced, open loop): 200, 2 000 and 20 000 messages/s over the 100
        # connections.
        run "$label" echo --conns 100 --rate 200 --size 64 --secs 5
        run "$label" echo --conns 100 --rate 2000 --size 64 --secs 5
        run "$label" echo --conns 100 --rate 20000 --size 64 --secs 5
        run "$label" fanout --receivers 9999 --messages 50
        run "$label" fanout --path /topic --receivers 9999 --messages 50
        run "$label" storm --conns 10000
    done
done
for label in $labels; do
    run "$label" idle --conns 10000
done

python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:  # paced echo runs are their own scenarios
    if r["scenario"] == "echo" and r.get("rate"):
        r["scenario"] = f"echo@{r['rate']}"
peers = [l for l in ("node", "bun") if any(r["label"] == l for r in rows)]
def med(scenario, label, key):
    vals = [r[key] for r in rows if r["scenario"] == scenario and r["label"] == label and key in r]
    return statistics.median(vals) if vals else float("nan")
names = {"node": "node (ws)", "bun": "bun"}
vs_bun = "bun" in peers
head = "| scenario | metric | native | wasock | wasock/native |" + "".join(f" {names[p]} |" for p in peers)
head += " wasock/bun |" if vs_bun else ""
print(head)
print("|---" * (head.count("|") - 1) + "|")
for scenario, key, name in [
    ("echo", "msgs_per_sec", "echo msg/s (100 conns, 8 in flight, 64 B)"),
    ("echo", "p50_us", "echo p50 us"),
    ("echo", "p99_us", "echo p99 us"),
    ("echo", "max_us", "echo max us"),
    ("echo", "server_us_per_msg", "echo: server CPU us per message"),
    ("echo", "endpoint_us_per_msg", "echo: of which wasock's endpoint thread"),
    ("echo", "client_cpu", "echo: load client's share of its core"),
    ("echo@200", "server_us_per_msg", "echo paced 200 msg/s: server CPU us per message"),
    ("echo@200", "p50_us", "echo paced 200 msg/s: p50 us"),
    ("echo@200", "p99_us", "echo paced 200 msg/s: p99 us"),
    ("echo@2000", "server_us_per_msg", "echo paced 2 000 msg/s: server CPU us per message"),
    ("echo@2000", "p50_us", "echo paced 2 000 msg/s: p50 us"),
    ("echo@2000", "p99_us", "echo paced 2 000 msg/s: p99 us"),
    ("echo@20000", "server_us_per_msg", "echo paced 20 000 msg/s: server CPU us per message"),
    ("echo@20000", "p50_us", "echo paced 20 000 msg/s: p50 us"),
    ("echo@20000", "p99_us", "echo paced 20 000 msg/s: p99 us"),
    ("fanout", "deliveries_per_sec", "fan-out deliveries/s (10000 sessions: 9999 receivers + the sender)"),
    ("fanout", "p99_us", "fan-out time to last receiver p99 us"),
    ("fanout", "server_us_per_delivery", "fan-out: server CPU us per delivery"),
    ("topic", "deliveries_per_sec", "topic publish deliveries/s (a topic of 10000 sessions)"),
    ("topic", "p99_us", "topic publish time to last receiver p99 us"),
    ("topic", "server_us_per_delivery", "topic publish: server CPU us per delivery"),
    ("storm", "ok", "storm: connections ok of 10000"),
    ("storm", "secs", "storm seconds"),
    ("idle", "kib_per_conn", "idle RSS KiB per connection (10000)"),
    ("idle", "idle_cpu_pct", "idle: server CPU, % of a core (10000 connections, no traffic)"),
]:
    n, w = med(scenario, "native", key), med(scenario, "wasock", key)
    line = f"| {scenario} | {name} | {n:.2f} | {w:.2f} | {w / n if n else float('nan'):.2f} |"
    for p in peers:
        line += f" {med(scenario, p, key):.2f} |"
    if vs_bun:
        b = med(scenario, "bun", key)
        line += f" {w / b if b else float('nan'):.2f} |"
    print(line)
# Each round ran the servers back to back: the ratio per round shows how
# much the machine's noise moves it.
def per_round(scenario, key, peer="native"):  # (peer, wasock) pairs, one per round
    vals = lambda lab: [r[key] for r in rows if r["scenario"] == scenario and r["label"] == lab]
    return list(zip(vals(peer), vals("wasock")))
pairs = [round(w / n, 2) for n, w in per_round("echo", "msgs_per_sec")]
print(f"\necho msg/s ratio per round: {pairs} (median {statistics.median(pairs)})")
for rate in (200, 2000, 20000):
    for peer in ["native"] + (["bun"] if vs_bun else []):
        for key in ("p50_us", "p99_us"):
            deltas = [w - n for n, w in per_round(f"echo@{rate}", key, peer)]
            if deltas:
                print(f"echo paced {rate} msg/s, {key[:3]} wasock - {peer} per round (us): {deltas} (median {statistics.median(deltas)})")
if vs_bun:
    for scenario, key in (("echo", "server_us_per_msg"), ("echo@2000", "server_us_per_msg"), ("topic", "server_us_per_delivery")):
        ratios = [round(w / b, 2) for b, w in per_round(scenario, key, "bun") if b]
        print(f"{scenario} {key}, wasock / bun per round: {ratios}")
# The hypervisor's share of the machine during each echo run (load's
# steal_pct): a round that lost much of it is noise, not a server.
for scenario in ("echo", "echo@200", "echo@2000"):
    for label in ["native", "wasock"] + peers:
        steal = [r["steal_pct"] for r in rows if r["scenario"] == scenario and r["label"] == label and "steal_pct" in r]
        if steal:
            print(f"{scenario} {label}: % of the machine stolen by the hypervisor per round: {steal}")
EOF

echo
echo "per language (server and client unpinned):"
target/release/languages 3
