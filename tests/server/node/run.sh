#!/usr/bin/env bash
# Installs the pinned openai client (package-lock.json) when missing, then runs the test.
# Exit 77 (CTest: skipped) with the reason when Node.js or the package is unavailable.
set -uo pipefail
binary=$(realpath "$1")
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: node/npm not installed"
    exit 77
fi
if [ ! -d node_modules/openai ]; then
    if ! timeout 300 npm ci --no-audit --no-fund --loglevel=error; then
        echo "SKIP: could not install node_modules (npm ci failed; offline?)"
        exit 77
    fi
fi
exec timeout 300 node test_openai.mjs "$binary"
