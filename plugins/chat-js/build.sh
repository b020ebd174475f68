#!/bin/sh
# Builds the chat-js component: componentize-js (StarlingMonkey) from npm,
# pinned in package-lock.json, through the JavaScript SDK's build script.
set -eu
[ -d node_modules/@bytecodealliance/componentize-js ] || npm ci --no-audit --no-fund --loglevel=error
mkdir -p ../target
sh ../../guest-sdk/js/build.sh chat.js ../target/chat-js.wasm
