// Attention at TinyLlama-1.1B's shape (32 heads, 4 KV heads, head_dim 64, f16 cache):
// the scalar reference against the fast paths (AVX2, and AVX-512 where the machine has
// it: its products 16 lanes wide), prefill of N tokens (causal, cells
// 0..N-1), decode of one token against N cells, and a prompt after cached tokens; and
// decode at Llama-2-7B's (32 heads, each its own KV head, head_dim 128) and Llama-3-8B's
// (32 heads in groups of 4, head_dim 128). Threads:
// LCX_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/thread_pool.h"

namespace {

int bench_threads() {
    const char* e = std::getenv("LCX_BENCH_THREADS");
    return e ? std::atoi(e) : 2;
}

// range(0): 0 = reference, 1 = the AVX2 path, 2 = the AVX-512 path; range(1): cells; range(2):
// tokens (1 = decode); range(3): 0 = TinyLlama's shape, 1 = Llama-2-7B's, 2 = Llama-3-8B's
// (32 heads in groups of 4, head_dim 128).
void BM_Attention(benchmark::State& state) {
    const lcx::CpuPath path = state.range(0) == 2   ? lcx::CpuPath::Avx512
                              : state.range(0) == 1 ? lcx::CpuPath::Avx2
                                                    : lcx::CpuPath::Scalar;
    if (!lcx::cpu_path_supported(path)) {
        state.SkipWithError("this machine lacks the path's instructions");
        return;
    }
    const int64_t n_kv = state.range(1), nt = state.range(2);
    const int64_t shape = state.range(3);
    const int64_t hd = shape == 0 ? 64 : 128, nh = 32, nkvh = shape == 0 ? 4 : shape == 1 ? 32 : 8;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    lcx::Tensor q = lcx::Tensor::zeros(lcx::DType::F32, {hd, nh, nt});
    for (int64_t i = 0; i < q.n_elements(); ++i) q.data_as<float>()[i] = nd(rng);
    lcx::Tensor kf = lcx::Tensor::zeros(lcx::DType::F32, {hd, nkvh * n_kv});
    for (int64_t i = 0; i < kf.n_elements(); ++i) kf.data_as<float>()[i] = nd(rng);
    // Head-major, as the KV cache keeps them: [hd, cells, heads].
    lcx::Tensor k = lcx::Tensor::zeros(lcx::DType::F16, {hd, n_kv, nkvh});
    lcx::Tensor v = lcx::Tensor::zeros(lcx::DType::F16, {hd, n_kv, nkvh});
    auto be = lcx::make_cpu_backend(1);
    be->store_rows(kf, k, 0);
    be->store_rows(kf, v, 0);
    lcx::Tensor out = lcx::Tensor::zeros(lcx::DType::F32, {hd * nh, nt});
    std::vector<int32_t> pos;
    for (int64_t t = 0; t < nt; ++t) pos.push_back(int32_t(n_kv - nt + t));
    lcx::cpu::AttnArgs a;
    a.q = q.data_as<float>();
    a.out = out.data_as<float>();
    a.k = k.row(0);
    a.v = v.row(0);
    a.k_row_bytes = k.row_size();
    a.v_row_bytes = v.row_size();
    a.k_head_bytes = k.nb(2);
    a.k_cell_bytes = k.nb(1);
    a.v_head_bytes = v.nb(2);
    a.v_cell_bytes = v.nb(1);
    a.kt = a.vt = lcx::DType::F16;
    a.hd = hd;
    a.n_head = nh;
    a.n_head_kv = nkvh;
    a.n_tokens = nt;
    a.n_kv = n_kv;
    a.positions = pos.data();
    a.p.scale = 1.0f / std::sqrt(float(hd));
    a.p.n_kv = n_kv;
    lcx::ThreadPool pool(bench_threads());
    lcx::cpu::attention_run(a, path, pool);
    for (auto _ : state) {
        lcx::cpu::attention_run(a, path, pool);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(
        std::string(path == lcx::CpuPath::Scalar ? "reference" : lcx::cpu_path_name(path)) + " " +
        std::to_string(pool.size()) + " threads");
    // Multiply-adds of Q·K and P·V actually required: token t (at cell n_kv - nt + t)
    // sees n_kv - nt + t + 1 cells.
    const double pairs = double(nt) * double(n_kv - nt) + double(nt) * double(nt + 1) / 2;
    state.counters["GFLOP/s"] = benchmark::Counter(4.0 * pairs * hd * nh * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Attention)
    ->ArgsProduct({{0, 1}, {512}, {512, 1}, {0}})
    ->Args({0, 2048, 1, 0})
    ->Args({1, 2048, 1, 0})
    ->Args({1, 2048, 2048, 0})
    // A 512-token prompt after 2048 cached tokens (pp512 @ d2048).
    ->Args({1, 2560, 512, 0})
    // The AVX-512 path: prompts, and decode (TinyLlama at 2048 and 32768 cells, and
    // multi-head).
    ->Args({2, 512, 512, 0})
    ->Args({2, 2048, 2048, 0})
    ->Args({2, 2560, 512, 0})
    ->Args({2, 2048, 1, 0})
    ->Args({2, 32768, 1, 0})
    ->Args({2, 2048, 1, 1})
    // Grouped-query decode in groups of 4, 16 MiB of K and V per layer at 4096 cells.
    ->Args({1, 4096, 1, 2})
    ->Args({2, 4096, 1, 2})
    // Decode against 32 MiB of K and V: from memory, as a model's cache is read (the
    // weights stream through the caches between two layers' attention).
    ->Args({1, 32768, 1, 0})
    // Multi-head decode: 32 MiB of K and V per layer at 2048 cells.
    ->Args({0, 2048, 1, 1})
    ->Args({1, 2048, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
