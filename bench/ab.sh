#!/usr/bin/env bash
# Two wasock builds (or one build under two environments) side by side:
# the scenarios of run.sh that a host change moves (echo saturated, echo
# paced at 2 000 and 200 msg/s, a topic publish to 10 000, idle RSS),
# alternating A and B in every round, server on core 0 and load client on
# core 1 as in run.sh. Prints one JSON line per run and a table of medians
# with the B/A ratio: the way to tell whether a change pays on this noisy
# machine (callgrind, instructions.sh, counts user space only).
#
# Usage: bench/ab.sh A B [ROUNDS]   (default 3)
#   A, B: paths of wasock binaries (copy the build before a change first)
#   A_ENV, B_ENV: extra environment for each, e.g. B_ENV="MALLOC_ARENA_MAX=2"
#   A_PLUGINS, B_PLUGINS: a directory with built `echo` and `topic` plugins
#     to serve instead of bench/plugins (e.g. built with an older guest SDK)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
a=$(realpath "$1")
b=$(realpath "$2")
rounds=${3:-3}
out=$(mktemp)

# Built as run.sh builds, so the two scripts do not rebuild each other.
cargo build --release -p wasock -p wasock-bench >&2
"$a" build bench/plugins >&2

pin_server="taskset -c 0"
pin_client="taskset -c 1"
if [ "$(nproc)" -lt 2 ]; then pin_server=""; pin_client=""; fi

run() { # $1 = A|B, rest = scenario args
    local side=$1 bin env plugins log pid port
    shift
    if [ "$side" = A ]; then bin=$a env=${A_ENV:-} plugins=${A_PLUGINS:-bench/plugins}; else bin=$b env=${B_ENV:-} plugins=${B_PLUGINS:-bench/plugins}; fi
    log=$(mktemp)
    # shellcheck disable=SC2086 # env is a list of NAME=VALUE words
    env $env RUST_LOG=warn,wasock::cli=info $pin_server "$bin" serve --listen 127.0.0.1:0 --no-watch \
        "$plugins/echo" "$plugins/topic" >"$log" 2>&1 &
    pid=$!
    port=$(listening_port "$log" 120)
    $pin_client target/release/load --url "ws://127.0.0.1:$port" --label "$side" "$@" --pid "$pid" | tee -a "$out"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for side in A B; do
        run "$side" echo --conns 100 --inflight 8 --size 64 --secs 5
        run "$side" echo --conns 100 --rate 2000 --size 64 --secs 5
        run "$side" echo --conns 100 --rate 200 --size 64 --secs 5
        run "$side" fanout --path /topic --receivers 9999 --messages 50
        run "$side" idle --conns 10000
    done
done

python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:
    if r["scenario"] == "echo" and r.get("rate"):
        r["scenario"] = f"echo@{r['rate']}"
def med(scenario, side, key):
    vals = [r[key] for r in rows if r["scenario"] == scenario and r["label"] == side and key in r]
    return statistics.median(vals) if vals else float("nan")
print("| metric | A | B | B/A |")
print("|---|---|---|---|")
for scenario, key, name in [
    ("echo", "msgs_per_sec", "echo msg/s (100 conns, 8 in flight, 64 B)"),
    ("echo", "server_us_per_msg", "echo: server CPU us per message"),
    ("echo@2000", "server_us_per_msg", "echo paced 2 000/s: server CPU us per message"),
    ("echo@2000", "p50_us", "echo paced 2 000/s: p50 us"),
    ("echo@2000", "p99_us", "echo paced 2 000/s: p99 us"),
    ("echo@200", "server_us_per_msg", "echo paced 200/s: server CPU us per message"),
    ("topic", "server_us_per_delivery", "topic publish to 10 000: server CPU us per delivery"),
    ("idle", "kib_per_conn", "idle RSS KiB per connection (10 000)"),
]:
    x, y = med(scenario, "A", key), med(scenario, "B", key)
    print(f"| {name} | {x:.2f} | {y:.2f} | {y / x if x else float('nan'):.3f} |")
EOF
