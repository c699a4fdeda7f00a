// Throughput of the reference (scalar) dequantizers and quantizers, per type: the
// baseline the backend's SIMD kernels are measured against.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "quant/quant.h"

namespace {

constexpr int64_t kN = 4096 * 16;  // elements per call: a multiple of every block size

const lcx::DType kTypes[] = {
    lcx::DType::F16,  lcx::DType::BF16, lcx::DType::Q4_0,   lcx::DType::Q4_1,
    lcx::DType::Q5_0, lcx::DType::Q5_1, lcx::DType::Q8_0,   lcx::DType::Q8_1,
    lcx::DType::Q2_K, lcx::DType::Q3_K, lcx::DType::Q4_K,   lcx::DType::Q5_K,
    lcx::DType::Q6_K, lcx::DType::Q8_K, lcx::DType::IQ4_NL, lcx::DType::IQ4_XS};

std::vector<float> weights() {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> x(kN);
    for (auto& v : x) v = dist(rng);
    return x;
}

void BM_Dequantize(benchmark::State& state) {
    const auto type = kTypes[state.range(0)];
    const auto x = weights();
    std::vector<uint8_t> q(lcx::row_bytes(type, kN));
    lcx::quantize_row(type, x.data(), q.data(), kN);
    std::vector<float> y(kN);
    for (auto _ : state) {
        lcx::dequantize_row(type, q.data(), y.data(), kN);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetItemsProcessed(state.iterations() * kN);
    state.SetLabel(std::string(lcx::dtype_name(type)));
}

void BM_Quantize(benchmark::State& state) {
    const auto type = kTypes[state.range(0)];
    const auto x = weights();
    std::vector<uint8_t> q(lcx::row_bytes(type, kN));
    for (auto _ : state) {
        lcx::quantize_row(type, x.data(), q.data(), kN);
        benchmark::DoNotOptimize(q.data());
    }
    state.SetItemsProcessed(state.iterations() * kN);
    state.SetLabel(std::string(lcx::dtype_name(type)));
}

BENCHMARK(BM_Dequantize)->DenseRange(0, std::size(kTypes) - 1);
BENCHMARK(BM_Quantize)->DenseRange(0, std::size(kTypes) - 1);

}  // namespace

BENCHMARK_MAIN();
