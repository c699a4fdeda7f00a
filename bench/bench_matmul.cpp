// Products of M activation rows with a weight: prompt-shaped (M = 512) at 4096 x 4096 and
// TinyLlama-1.1B's shapes, and a few rows (M = 4..16) as server slots batch them; GFLOP/s.
// Threads: LCX_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "backend/backend.h"
#include "bandwidth.h"

namespace {

void BM_Matmul(benchmark::State& state) {
    const auto type = lcx::DType(state.range(0));
    const int64_t m = state.range(1), n = state.range(2), k = state.range(3);
    const char* e = std::getenv("LCX_BENCH_THREADS");
    auto be = lcx::make_cpu_backend(e ? std::atoi(e) : 2);
    const lcx::Tensor w = lcx::bench::random_weight(type, k, n);
    const lcx::Tensor x = lcx::bench::random_input(k, m);
    lcx::Tensor y = lcx::Tensor::zeros(lcx::DType::F32, {n, m});
    for (auto _ : state) {
        be->matmul(w, x, y);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetLabel(std::string(lcx::dtype_name(type)) + " " + be->name());
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(m * n * k) * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void args(benchmark::internal::Benchmark* b) {
    for (lcx::DType t : lcx::bench::kBenchTypes) {
        b->Args({int64_t(t), 512, 4096, 4096});
        // TinyLlama-1.1B's shapes: attention and FFN up (K = 2048), FFN down (K = 5632).
        b->Args({int64_t(t), 512, 5632, 2048});
        b->Args({int64_t(t), 512, 2048, 5632});
        // A few rows at once (server slots decoding together): where the decode kernels
        // hand over to the panels.
        for (int m : {4, 8, 16}) b->Args({int64_t(t), m, 5632, 2048});
    }
}
BENCHMARK(BM_Matmul)->Apply(args)->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();

// F16 weights in a prompt, exact (range(3) = 0) and with CpuBackendOptions::f16_as_bf16 (1:
// bf16 products where the CPU has them; the label names the backend, which says whether
// it does), at TinyLlama's FFN shapes, timed alike.
void BM_MatmulF16AsBf16(benchmark::State& state) {
    const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
    const char* e = std::getenv("LCX_BENCH_THREADS");
    lcx::CpuBackendOptions o;
    o.f16_as_bf16 = state.range(3) != 0;
    auto be = lcx::make_cpu_backend(e ? std::atoi(e) : 2, o);
    const lcx::Tensor w = lcx::bench::random_weight(lcx::DType::F16, k, n);
    const lcx::Tensor x = lcx::bench::random_input(k, m);
    lcx::Tensor y = lcx::Tensor::zeros(lcx::DType::F32, {n, m});
    for (auto _ : state) {
        be->matmul(w, x, y);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetLabel("F16 " + be->name());
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(m * n * k) * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulF16AsBf16)
    ->ArgsProduct({{512}, {5632}, {2048}, {0, 1}})
    ->Args({512, 2048, 5632, 0})
    ->Args({512, 2048, 5632, 1})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0)
    ->UseRealTime();

// A SwiGLU FFN's hidden layer at TinyLlama's shape (512 x 5632 from K = 2048): the fused
// product (range(1) = 1: gate and up per part of hidden units, the activation on the
// part) against the two products and the elementwise op (0), in one process.
void BM_MatmulGlu(benchmark::State& state) {
    const auto type = lcx::DType(state.range(0));
    const bool fused = state.range(1) != 0;
    const int64_t m = 512, n = 5632, k = 2048;
    const char* e = std::getenv("LCX_BENCH_THREADS");
    auto be = lcx::make_cpu_backend(e ? std::atoi(e) : 2);
    const lcx::DType layout = be->matmul_layout(type, n, k);
    const lcx::Tensor gate = lcx::bench::random_weight(layout, k, n);
    const lcx::Tensor up = lcx::bench::random_weight(layout, k, n);
    const lcx::Tensor x = lcx::bench::random_input(k, m);
    lcx::Tensor h = lcx::Tensor::zeros(lcx::DType::F32, {n, m});
    lcx::Tensor u = lcx::Tensor::zeros(lcx::DType::F32, {n, m});
    for (auto _ : state) {
        if (fused)
            be->matmul_glu(x, gate, up, lcx::Glu::Silu, h, u);
        else
            be->Backend::matmul_glu(x, gate, up, lcx::Glu::Silu, h, u);
        benchmark::DoNotOptimize(h.data());
    }
    state.SetLabel(std::string(lcx::dtype_name(layout)) + (fused ? " fused " : " apart ") +
                   be->name());
    state.counters["GFLOP/s"] = benchmark::Counter(4.0 * double(m * n * k) * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatmulGlu)
    ->ArgsProduct({{int64_t(lcx::DType::Q4_0), int64_t(lcx::DType::Q4_K), int64_t(lcx::DType::F16)},
                   {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
