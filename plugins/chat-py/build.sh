#!/bin/sh
# Builds the chat-py component with componentize-py (PyPI, pinned in
# requirements.txt): CPython and the app, as one component.
set -eu
command -v componentize-py >/dev/null || pip install --quiet -r requirements.txt
mkdir -p ../target
componentize-py -d ../../wit/v0.1 -w stateful-plugin componentize chat -o ../target/chat-py.wasm
