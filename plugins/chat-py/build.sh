#!/bin/sh
# Builds the chat-py component with componentize-py (PyPI, pinned in
# requirements.txt) through the Python SDK's build script.
set -eu
command -v componentize-py >/dev/null || pip install --quiet -r requirements.txt
mkdir -p ../target
sh ../../guest-sdk/python/build.sh chat ../target/chat-py.wasm
