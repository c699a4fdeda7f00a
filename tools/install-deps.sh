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
    libcpp-httplib-dev libpcre2-dev libutf8proc-dev python3 >/dev/null
