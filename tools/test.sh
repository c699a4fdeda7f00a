#!/usr/bin/env bash
# Builds (Release) and runs the whole test suite. Usage: tools/test.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
# The AVX-512 path once more through SIMDe's emulation of the intrinsics, so it is tested
# on machines without AVX-512 too (where the suite above skips it): the kernels, and the
# models against llama.cpp's outputs (the emulated path is the build's default).
emu="$build-avx512-emulated"
cmake -S . -B "$emu" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_EMULATE_AVX512=ON \
    -DLCX_BUILD_BENCH=OFF >/dev/null
cmake --build "$emu" -j2 --target test_backend test_model test_runtime
for t in test_backend test_model test_runtime; do "$emu/$t" --gtest_brief=1; done
