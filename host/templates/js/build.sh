#!/bin/sh
# Builds {{name}}.wasm with componentize-js (npm). Needs Node.js >= 20.
set -eu
[ -d node_modules/@bytecodealliance/componentize-js ] || npm install --no-audit --no-fund --loglevel=error
npx --no-install componentize-js app.js --wit wit --world-name plugin \
  -d http fetch-event -o {{name}}.wasm
