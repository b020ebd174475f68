#!/usr/bin/env bash
# User-space instructions per echoed message (or per fan-out delivery),
# native baseline vs wasock, counted by callgrind: unlike a time, the count
# barely moves with the machine's noise, so it shows what a host change
# saves (within ~1-2 %). Kernel work (TCP over loopback) is not counted;
# see BENCHMARKS.md.
#
# Each server runs under valgrind (about 50x slower), the load client
# natively.
# - echo (default): warm-up for 2 s, then instructions are counted for SECS
#   seconds of the echo scenario (100 connections x 8 in flight x 64 B).
# - topic: 999 receivers of topic `bench` (`/topic`), counted over two
#   fan-out runs, 20 and then 120 messages published; the difference of
#   the two counts over the 100 x 999 deliveries it adds is the cost of a
#   delivery without the connects and handshakes both runs pay (SECS is
#   not used).
#
# Usage: bench/instructions.sh [SECS] [echo|topic]   (default 6 echo; needs valgrind)
# WASOCK=path/to/wasock measures another build of the server (a copy of an
# earlier one, to compare a change).
# Leaves the profiles in target/callgrind/{native,wasock}.out* for
# callgrind_annotate (for topic, the 120 messages' run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
secs=${1:-6}
scenario=${2:-echo}
dir=target/callgrind
mkdir -p "$dir"

cargo build --release -p wasock -p wasock-bench >&2
target/release/wasock build bench/plugins >&2

totals() { # FILE...: the instructions counted in callgrind profiles
    cat "$@" | awk '/^totals:/ {s += $2} END {print s}'
}

count() { # $1 = native|wasock; prints one JSON line
    local label=$1 log out pid port res msgs ir
    log=$(mktemp)
    out="$dir/$label.out"
    rm -f "$out"*
    local vg=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$out")
    if [ "$label" = native ]; then
        "${vg[@]}" target/release/native 127.0.0.1:0 >"$log" 2>&1 &
    else
        RUST_LOG=warn,wasock::cli=info "${vg[@]}" "${WASOCK:-target/release/wasock}" serve --listen 127.0.0.1:0 --no-watch \
            --cache-dir "$dir/cache" bench/plugins/echo bench/plugins/topic >"$log" 2>&1 &
    fi
    pid=$!
    port=$(listening_port "$log" 120)
    local url="ws://127.0.0.1:$port"
    if [ "$scenario" = topic ]; then
        local fanout=(target/release/load --url "$url" --label "$label" fanout --path /topic --receivers 999)
        "${fanout[@]}" --messages 5 >/dev/null
        local parts=()
        for messages in 20 120; do
            callgrind_control -i on "$pid" >/dev/null
            "${fanout[@]}" --messages "$messages" >/dev/null
            callgrind_control -i off "$pid" >/dev/null
            # A dump writes the counts so far and zeroes them.
            callgrind_control -d "$pid" >/dev/null
            parts+=("$(totals "$out".*)")
            # The second run's profile stays, for callgrind_annotate.
            [ "$messages" = 120 ] || rm -f "$out".*
        done
        ir=$((parts[1] - parts[0]))
        msgs=$((100 * 999))
    else
        local load=(target/release/load --url "$url" --label "$label" echo --conns 100 --inflight 8 --size 64)
        "${load[@]}" --secs 2 >/dev/null
        callgrind_control -i on "$pid" >/dev/null
        res=$("${load[@]}" --secs "$secs")
        callgrind_control -i off "$pid" >/dev/null
        callgrind_control -d "$pid" >/dev/null
        msgs=$(echo "$res" | grep -o '"messages":[0-9]*' | cut -d: -f2)
        ir=$(totals "$out".*)
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "{\"label\":\"$label\",\"scenario\":\"$scenario\",\"messages\":$msgs,\"instructions\":$ir,\"per_message\":$((ir / msgs))}"
}

n=$(count native)
w=$(count wasock)
echo "$n"
echo "$w"
python3 - "$n" "$w" <<'EOF'
import json, sys
n, w = (json.loads(a) for a in sys.argv[1:])
what = "fan-out delivery" if n["scenario"] == "topic" else "echoed message"
print(f"user-space instructions per {what}: native {n['per_message']}, wasock {w['per_message']} ({w['per_message'] / n['per_message']:.2f}x)")
EOF
