#!/bin/sh
# Builds the echo-c component from source: C bindings for the wasock:plugin
# world (wasock-c, a tool in guest-sdk/c), clang for wasm32-wasi as a
# reactor, then the core module packaged as a component.
# Needs: clang, lld, wasi-libc, libclang-rt-dev-wasm32 (Debian packages).
set -eu
sdk=../../guest-sdk/c
out=../target/echo-c
cargo build --quiet --release --manifest-path "$sdk/Cargo.toml" --target-dir ../target
tool=../target/release/wasock-c
"$tool" bindings ../../wit "$out"
${CC:-clang} --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror \
  -I "$out" -I "$sdk/include" -o "$out/echo-c.core.wasm" \
  echo.c "$sdk/wasock.c" "$out/plugin.c" "$out/plugin_component_type.o"
"$tool" component "$out/echo-c.core.wasm" ../target/echo-c.wasm
