#!/bin/sh
# tests/ws/install-node-ws.sh: install npm's `ws` (the WebSocket client the tests and
# bench/ws use) into tests/ws/node_modules, which git ignores. Needs node and npm.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/node_modules/ws/package.json" ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install-node-ws.sh: npm not found" >&2; exit 1; }
npm install --silent --no-audit --no-fund --no-save --prefix "$here" ws@8
