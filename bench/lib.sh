# Shared by the benchmark scripts (sourced, from the repository root).

# listening_port LOG [SECONDS]: waits until a server started with its output
# in LOG prints `listening on ADDR` (up to SECONDS, default 10), then prints
# the port.
listening_port() {
    local log=$1 tries=$((${2:-10} * 10))
    for _ in $(seq "$tries"); do
        if grep -q "listening on" "$log"; then break; fi
        sleep 0.1
    done
    grep -o "listening on [0-9.:]*" "$log" | head -1 | sed 's/.*://'
}
