#!/usr/bin/env bash
# Installs the Debian 12 packages llama-cxx builds and tests with.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    g++ cmake ninja-build pkg-config ccache clang \
    libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev \
    libcpp-httplib-dev libpcre2-dev libutf8proc-dev libsimde-dev python3 >/dev/null
# The server's client test runs the official openai npm package, pinned by
# tests/server/node/package-lock.json (that test is skipped when this cannot run).
if command -v npm >/dev/null; then
    (cd "$(dirname "$0")/../tests/server/node" && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "npm ci failed: the openai client test will be skipped"
fi
