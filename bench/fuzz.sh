#!/usr/bin/env bash
# Runs each fuzz target (fuzz/, cargo fuzz + libFuzzer) for SECS seconds:
# the manifest parser, the codec (client bytes into the WebSocket codec,
# permessage-deflate on or off), and the wire target (raw bytes as the HTTP upgrade
# request, or as frames after a valid handshake, into a real server serving
# the echo plugin). Findings land in fuzz/artifacts/<target>/; each becomes
# a regression test.
#
# Usage: bench/fuzz.sh [SECS]   (default 60; needs `cargo install cargo-fuzz`
# and the echo plugin built: `cargo run -p wasock -- build plugins/echo`)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
# cargo fuzz passes unstable flags (sanitizer coverage options); the stable
# toolchain accepts them with RUSTC_BOOTSTRAP. No sanitizer: the targets
# look for panics, aborts and a server that stops serving.
export RUSTC_BOOTSTRAP=1
# Seeds: a manifest, and for the wire target (first byte: 0 = raw request,
# 1 = frames after a valid handshake) an upgrade, a masked text, a ping and
# a close frame.
mkdir -p corpus/manifest corpus/codec corpus/wire
cp ../host/tests/manifests/*.toml corpus/manifest/
# Codec seeds (first byte: bit 0 = deflate agreed, bit 1 = context
# takeover, the rest = how the bytes are cut): a masked text, and a
# compressed "hello" (RSV1) with deflate agreed.
printf '\0\201\202\1\2\3\4ik' > corpus/codec/seed-text
printf '\1\301\207\0\0\0\0\362\110\315\311\311\007\0' > corpus/codec/seed-deflate
printf '\0GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' > corpus/wire/seed-upgrade
printf '\1\201\202\1\2\3\4ik' > corpus/wire/seed-text
printf '\1\211\200\1\2\3\4' > corpus/wire/seed-ping
printf '\1\210\202\1\2\3\4\2\353' > corpus/wire/seed-close
for target in manifest codec wire; do
    cargo fuzz run --sanitizer none "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=4096 -rss_limit_mb=4096 2>&1 \
        | grep -E "^#[0-9]+.*(DONE|pulse)|Done|ERROR|panicked|crash-" | tail -n 3
done
