#!/usr/bin/env bash
# The epoch ticker thread's cost under paced echo: wake-ups (voluntary
# context switches) and CPU per second of `wasock-epoch`, read from
# /proc/PID/task/TID over one `load echo --rate RATE` run (server on core 0,
# load client on core 1, as in run.sh). A per-thread reading, so it shows
# what the ticker costs even on a day too noisy for per-message CPU.
#
# Usage: bench/ticker.sh [BIN] [RATE] [SECS]   (default target/release/wasock 200 8)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
bin=${1:-target/release/wasock}
rate=${2:-200}
secs=${3:-8}
cargo build --release -p wasock-bench --bin load >&2
log=$(mktemp)
RUST_LOG=warn,wasock::cli=info taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --no-watch \
    bench/plugins/echo bench/plugins/topic >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
port=$(listening_port "$log" 120)
tid=$(dirname "$(grep -l wasock-epoch /proc/"$pid"/task/*/comm | head -1)")
snap() { # voluntary switches, run time ns
    echo "$(awk '/^voluntary_ctxt_switches/ {print $2}' "$tid/status") $(awk '{print $1}' "$tid/schedstat")"
}
before=$(snap)
taskset -c 1 target/release/load --url "ws://127.0.0.1:$port" --label ticker \
    echo --conns 100 --rate "$rate" --size 64 --secs "$secs" --pid "$pid" >/dev/null
after=$(snap)
python3 - "$before" "$after" "$secs" "$rate" <<'P'
import json, sys
b, a = (list(map(int, x.split())) for x in sys.argv[1:3])
secs, rate = float(sys.argv[3]), int(sys.argv[4])
print(json.dumps({"scenario": "ticker", "rate": rate,
                  "wakeups_per_sec": round((a[0] - b[0]) / secs, 1),
                  "cpu_us_per_sec": round((a[1] - b[1]) / 1e3 / secs, 1)}))
P
