#!/bin/sh
# Builds the chat-js component: componentize-js (StarlingMonkey) from npm,
# pinned in package-lock.json. WASI stdio, clocks and random stay (the host
# provides them, sandboxed); HTTP is dropped (wasock grants no network).
set -eu
[ -d node_modules/@bytecodealliance/componentize-js ] || npm ci --no-audit --no-fund --loglevel=error
mkdir -p ../target
npx --no-install componentize-js chat.js --wit ../../wit/v0.1 --world-name stateful-plugin \
  -d http fetch-event -o ../target/chat-js.wasm
