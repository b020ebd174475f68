"""Per-message server residence from `perf script -F tid,time,event,trace`
of raw_syscalls tracepoints (bench/residence.sh): for each thread, a wake-up
is an epoll wait returning events; the first `recvfrom` after it is the
message's read, and the next `sendto` the reply. Prints one JSON line of
medians (us). Usage: perf script ... | residence.py LABEL RATE CALL_MEAN_US LOAD_JSON"""

import json
import re
import sys

WAITS = {232, 281, 441}  # epoll_wait, epoll_pwait, epoll_pwait2 (x86_64)
RECV, SEND = 45, 44  # recvfrom, sendto
LINE = re.compile(r"\s*(\d+)\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit):\s+NR (-?\d+)(?:.*= (-?\d+))?")

label, rate, call = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(sys.argv[4]) as load:
    steal = json.loads(load.read().strip().splitlines()[-1]).get("steal_pct")
open_ = {}  # tid -> the message being followed: times so far
spans = []  # (wake -> read, read, read -> send)
for line in sys.stdin:
    m = LINE.match(line)
    if not m:
        continue
    tid, t, kind, nr, ret = int(m[1]), float(m[2]) * 1e6, m[3], int(m[4]), m[5]
    if kind == "exit" and nr in WAITS:
        if ret is not None and int(ret) > 0:
            open_[tid] = {"wake": t}
        continue
    msg = open_.get(tid)
    if msg is None:
        continue
    if nr == RECV and kind == "enter" and "read" not in msg:
        msg["read"] = t
    elif nr == RECV and kind == "exit" and "read" in msg and "read_end" not in msg:
        msg["read_end"] = t
    elif nr == SEND and kind == "enter" and "read_end" in msg:
        spans.append((msg["read"] - msg["wake"], msg["read_end"] - msg["read"], t - msg["read_end"]))
        del open_[tid]


def p50(values):
    values = sorted(values)
    return round(values[len(values) // 2], 1) if values else None


print(json.dumps({
    "scenario": "residence", "label": label, "rate": rate, "messages": len(spans),
    "wake_to_read_us": p50(s[0] for s in spans), "read_us": p50(s[1] for s in spans),
    "read_to_send_us": p50(s[2] for s in spans), "total_us": p50(sum(s) for s in spans),
    "call_mean_us": None if call == "null" else float(call), "steal_pct": steal,
}))
