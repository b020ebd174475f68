#!/bin/sh
# Builds {{name}}.wasm with componentize-py (pip install componentize-py).
set -eu
componentize-py -d wit -w plugin componentize app -o {{name}}.wasm
