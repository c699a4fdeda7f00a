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

}  // namespace

BENCHMARK_MAIN();
