// Decode-shaped products (one token): GB/s of weights read and the fraction of the read
// bandwidth measured in the same run. Threads: LCX_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "bandwidth.h"

namespace {

int bench_threads() {
    const char* e = std::getenv("LCX_BENCH_THREADS");
    return e ? std::atoi(e) : 2;
}

void BM_Bandwidth(benchmark::State& state) {
    double gbs = 0;
    for (auto _ : state) gbs = lcx::bench::read_bandwidth_gbs(bench_threads());
    state.counters["GB/s"] = gbs;
}
BENCHMARK(BM_Bandwidth)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Matvec(benchmark::State& state) {
    const auto type = lcx::DType(state.range(0));
    const int64_t n = state.range(1), k = state.range(2);
    auto be = lcx::make_cpu_backend(bench_threads());
    const lcx::Tensor w = lcx::bench::random_weight(type, k, n);
    const lcx::Tensor x = lcx::bench::random_input(k, 1);
    lcx::Tensor y = lcx::Tensor::zeros(lcx::DType::F32, {n, 1});
    be->matmul(w, x, y);
    for (auto _ : state) {
        be->matmul(w, x, y);
        benchmark::DoNotOptimize(y.data());
    }
    const double bytes = double(w.n_bytes());
    state.SetLabel(std::string(lcx::dtype_name(type)) + " " + be->name());
    state.counters["GB/s"] =
        benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    // Fraction of the streaming-read bandwidth (measured first, in this same process).
    const double bw = lcx::bench::read_bandwidth_gbs(bench_threads());
    state.counters["of_bw"] =
        benchmark::Counter(bytes * 1e-9 / bw, benchmark::Counter::kIsIterationInvariantRate);
}

// One empty fork/join of the backend's pool: the fixed cost every parallel op pays.
void BM_ParallelRoundTrip(benchmark::State& state) {
    auto be = lcx::make_cpu_backend(bench_threads());
    std::atomic<int> sink{0};
    for (auto _ : state)
        be->parallel([&](int ith, int) { sink.fetch_add(ith, std::memory_order_relaxed); });
    benchmark::DoNotOptimize(sink.load());
    state.SetLabel(be->name());
}
BENCHMARK(BM_ParallelRoundTrip)->Unit(benchmark::kMicrosecond)->MinTime(0.3);

// 128 x 4096 stays in L2 for the 4-, 5- and 6-bit types (≤ 432 KiB): the kernel's own rate,
// the decode ceiling on a host whose memory is faster than that (run with 1 thread, the
// pool's fork/join is a fixed few µs).
void args(benchmark::internal::Benchmark* b) {
    for (lcx::DType t : lcx::bench::kBenchTypes) {
        b->Args({int64_t(t), 128, 4096});
        b->Args({int64_t(t), 4096, 4096});
        b->Args({int64_t(t), 11008, 4096});
    }
}
BENCHMARK(BM_Matvec)->Apply(args)->Unit(benchmark::kMicrosecond)->MinTime(0.3)->UseRealTime();

#if defined(__x86_64__)
// A path's decode kernel alone (BM_DecodeKernelAvx2, BM_DecodeKernelAvx512), on one
// thread: the activation converted once
// and 64 × 4096 weights, which stay in L2 for the quantized types (at most 278 KiB, Q8_0),
// so neither memory, the conversion nor the pool's fork/join count: what a core decodes
// when memory keeps up. (F16 and BF16 take 512 KiB, F32 1 MiB.)
template <lcx::CpuPath kPath>
void BM_DecodeKernel(benchmark::State& state) {
    if (!lcx::cpu_path_supported(kPath)) {
        state.SkipWithError("this machine lacks the path's instructions");
        return;
    }
    const auto type = lcx::DType(state.range(0));
    const int64_t n = 64, k = 4096;
    const lcx::cpu::MatmulFn fn =
        (kPath == lcx::CpuPath::Avx512 ? lcx::cpu::kernels_avx512() : lcx::cpu::kernels_avx2())
            .get(type);
    if (!fn) {
        state.SkipWithError("no kernel on this path");
        return;
    }
    const lcx::Tensor w = lcx::bench::random_weight(type, k, n);
    const lcx::Tensor x = lcx::bench::random_input(k, 1);
    lcx::cpu::ActRows a;
    lcx::cpu::act_resize(a, lcx::cpu::act_kind_for(type), k, 1);
    lcx::cpu::act_convert(a, x.data_as<float>(), size_t(k), 0, 1);
    std::vector<float> y(static_cast<size_t>(n));
    for (auto _ : state) {
        fn(w, 0, n, a, y.data(), size_t(n));
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetLabel(std::string(lcx::dtype_name(type)));
    state.counters["GB/s"] = benchmark::Counter(double(w.n_bytes()) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
void kernel_types(benchmark::internal::Benchmark* b) {
    for (lcx::DType t : lcx::bench::kBenchTypes) b->Arg(int64_t(t));
}
BENCHMARK(BM_DecodeKernel<lcx::CpuPath::Avx2>)
    ->Name("BM_DecodeKernelAvx2")
    ->Apply(kernel_types)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);
BENCHMARK(BM_DecodeKernel<lcx::CpuPath::Avx512>)
    ->Name("BM_DecodeKernelAvx512")
    ->Apply(kernel_types)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);
#endif

}  // namespace

BENCHMARK_MAIN();
