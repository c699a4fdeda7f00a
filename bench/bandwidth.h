// Shared by the matvec/matmul benchmarks: weight construction, and the machine's read
// bandwidth measured by a multi-threaded streaming read over a buffer much larger than L3.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "quant/quant.h"
#include "quant/repack.h"
#include "tensor/tensor.h"

namespace lcx::bench {

// GB/s of n_threads threads each summing its share of a 1 GiB buffer (best of 3 passes).
inline double read_bandwidth_gbs(int n_threads) {
    static double cached[64] = {};
    if (cached[n_threads] > 0) return cached[n_threads];
    const size_t n = size_t(1) << 27;  // 128 Mi uint64 = 1 GiB
    std::vector<uint64_t> buf(n);
    for (size_t i = 0; i < n; i += 512) buf[i] = i;  // touch every page
    double best = 0;
    for (int pass = 0; pass < 3; ++pass) {
        std::vector<uint64_t> sums(size_t(n_threads) * 8);
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        for (int t = 0; t < n_threads; ++t)
            ts.emplace_back([&, t] {
                const uint64_t* p = buf.data() + n * size_t(t) / size_t(n_threads);
                const size_t cnt = n / size_t(n_threads);
                // Four independent 16-byte chains so the adds never limit the loads.
#if defined(__SSE2__)
                __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
                for (size_t i = 0; i < cnt; i += 8) {
                    a0 = _mm_add_epi64(a0, _mm_loadu_si128((const __m128i*)(p + i)));
                    a1 = _mm_add_epi64(a1, _mm_loadu_si128((const __m128i*)(p + i + 2)));
                    a2 = _mm_add_epi64(a2, _mm_loadu_si128((const __m128i*)(p + i + 4)));
                    a3 = _mm_add_epi64(a3, _mm_loadu_si128((const __m128i*)(p + i + 6)));
                }
                alignas(16) uint64_t r[2];
                _mm_store_si128((__m128i*)r,
                                _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3)));
                const uint64_t s0 = r[0], s1 = r[1], s2 = 0, s3 = 0;
#else
                uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (size_t i = 0; i < cnt; i += 4) {
                    s0 += p[i];
                    s1 += p[i + 1];
                    s2 += p[i + 2];
                    s3 += p[i + 3];
                }
#endif
                sums[size_t(t) * 8] = s0 + s1 + s2 + s3;
            });
        for (auto& t : ts) t.join();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(n * 8) / s / 1e9);
        volatile uint64_t sink = sums[0];
        (void)sink;
    }
    cached[n_threads] = best;
    return best;
}

inline Tensor random_weight(DType t, int64_t k, int64_t n, uint32_t seed = 1) {
    if (is_packed(t)) {  // the file type's weights, repacked as a model load does
        const Tensor f = random_weight(traits(t).file_type, k, n, seed);
        Tensor w = Tensor::zeros(t, {k, n});
        pack_rows(t, f.data(), w.data(), n, k);
        return w;
    }
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    Tensor w = Tensor::zeros(t, {k, n});
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
        for (auto& v : row) v = dist(rng);
        if (t == DType::F32)
            std::memcpy(w.row(r), row.data(), row.size() * 4);
        else
            quantize_row(t, row.data(), w.row(r), k);
    }
    return w;
}

inline Tensor random_input(int64_t k, int64_t m) {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    Tensor x = Tensor::zeros(DType::F32, {k, m});
    float* p = x.data_as<float>();
    for (int64_t i = 0; i < k * m; ++i) p[i] = dist(rng);
    return x;
}

inline const DType kBenchTypes[] = {DType::F32,     DType::F16,     DType::BF16,  DType::Q4_0,
                                    DType::Q4_0_R8, DType::Q4_1,    DType::Q5_0,  DType::Q5_1,
                                    DType::Q8_0,    DType::Q8_0_R8, DType::Q2_K,  DType::Q3_K,
                                    DType::Q4_K,    DType::Q4_K_R8, DType::Q5_K,  DType::Q5_K_R8,
                                    DType::Q6_K,    DType::IQ4_NL,  DType::IQ4_XS};

}  // namespace lcx::bench
