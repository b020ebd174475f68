#!/usr/bin/env bash
# Where a message's time goes inside the server under a light paced echo:
# for every message, from the wake-up that brings it (the `epoll_wait` that
# returns with it) to the `send` of its reply, split at the server's read
# of it (`recvfrom`), timed by the kernel's syscall tracepoints (`perf
# record -e raw_syscalls:*`; each server pays its own, a few microseconds
# per message; builds before f194488 paid two more, for a second
# `epoll_wait` inside the window). native, wasock and Bun alternate in each
# round (server on core 0, load client on core 1, as in run.sh); for wasock the
# plugin call's own mean is read from its handler-call histogram
# (`/metrics`, the host's clock around the call) over the same window.
#
# What run.sh's end-to-end latency cannot tell apart: the client's share,
# the loopback's and the server's. Needs perf with tracepoint access (root,
# or kernel.perf_event_paranoid <= -1).
#
# Usage: bench/residence.sh [ROUNDS] [RATE]   (default 3 200)
#   WASOCK=PATH: another wasock binary for the wasock column (a build from
#   before a change, copied aside), to compare it in the same conditions
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
rounds=${1:-3}
rate=${2:-200}
out=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -p wasock -p wasock-bench >&2
wasock=${WASOCK:-target/release/wasock}
"$wasock" build bench/plugins >&2
labels="native wasock"
bun=bench/bun/node_modules/@oven/bun-linux-x64/bin/bun
if command -v node >/dev/null; then
    (cd bench/bun && npm ci --no-audit --no-fund --loglevel=error) >&2
    labels="$labels bun"
fi

# metric NAME ADDR: the handle-text calls' histogram NAME (sum or count).
metric() {
    curl -s "http://$2/metrics" | awk -v m="wasock_handler_call_seconds_$1" \
        '$1 ~ "^" m "\\{" && /handler="handle-text"/ && /route="\/echo"/ {print $2}'
}

run() { # $1 = label
    local label=$1 log pid port admin="" load sum0 count0
    log=$(mktemp)
    case $label in
        native) taskset -c 0 target/release/native 127.0.0.1:0 >"$log" 2>&1 & ;;
        bun) taskset -c 0 "$bun" bench/bun/server.js >"$log" 2>&1 & ;;
        wasock) RUST_LOG=warn,wasock::cli=info taskset -c 0 "$wasock" serve --listen 127.0.0.1:0 \
            --admin 127.0.0.1:0 --no-watch bench/plugins/echo >"$log" 2>&1 & ;;
    esac
    pid=$!
    port=$(listening_port "$log" 120)
    [ "$label" = wasock ] && admin=$(grep -o "admin endpoints on http://[0-9.:]*" "$log" | sed 's|.*http://||')
    taskset -c 1 target/release/load --url "ws://127.0.0.1:$port" --label "$label" \
        echo --conns 100 --rate "$rate" --size 64 --secs 10 --pid "$pid" >"$work/load" &
    load=$!
    sleep 3 # connected, and past the first messages
    if [ -n "$admin" ]; then sum0=$(metric sum "$admin"); count0=$(metric count "$admin"); fi
    perf record -q -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -p "$pid" -o "$work/perf.data" \
        -- sleep 5 >/dev/null 2>&1
    local call="null"
    if [ -n "$admin" ]; then
        call=$(python3 -c "import sys; s0,c0,s1,c1=map(float,sys.argv[1:]); print(round((s1-s0)/(c1-c0)*1e6,1))" \
            "$sum0" "$count0" "$(metric sum "$admin")" "$(metric count "$admin")")
    fi
    wait "$load"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    perf script -i "$work/perf.data" -F tid,time,event,trace 2>/dev/null |
        python3 bench/residence.py "$label" "$rate" "$call" "$work/load" | tee -a "$out"
}

for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for label in $labels; do run "$label"; done
done

python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = [("wake_to_read_us", "wake-up to the read"), ("read_us", "the read (recvfrom)"),
        ("read_to_send_us", "read to the reply's send"), ("total_us", "wake-up to the send"),
        ("call_mean_us", "of which the plugin call (mean)"),
        ("steal_pct", "% of the machine stolen by the hypervisor")]
labels = [l for l in ("native", "wasock", "bun") if any(r["label"] == l for r in rows)]
print("\n| p50 per message, us | " + " | ".join(labels) + " |")
print("|---|" + "---|" * len(labels))
for key, name in keys:
    cells = []
    for l in labels:
        v = [r[key] for r in rows if r["label"] == l and r.get(key) is not None]
        cells.append(f"{statistics.median(v):.1f}" if v else "")
    print(f"| {name} | " + " | ".join(cells) + " |")
EOF
