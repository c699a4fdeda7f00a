#include "common/bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/error.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lcx {

double measure_read_bandwidth_gbs(int n_threads, size_t bytes, int passes) {
    n_threads = std::max(1, n_threads);
    const size_t n = std::max<size_t>(bytes / 8, size_t(n_threads) * 64) & ~size_t(63);
    // An anonymous mapping so the memory really goes back to the system afterwards (the
    // caller may measure its resident set next).
    void* mem = ::mmap(nullptr, n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(mem != MAP_FAILED, "cannot map a bandwidth test buffer");
    auto* buf = static_cast<uint64_t*>(mem);
    for (size_t i = 0; i < n; i += 512) buf[i] = i;  // touch every page before timing
    double best = 0;
    for (int pass = 0; pass < std::max(1, passes); ++pass) {
        std::vector<uint64_t> sums(size_t(n_threads) * 8);  // a cache line per thread
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        for (int t = 0; t < n_threads; ++t)
            ts.emplace_back([&, t] {
                const size_t begin = (n * size_t(t) / size_t(n_threads)) & ~size_t(7);
                const size_t end =
                    t + 1 == n_threads ? n : (n * size_t(t + 1) / size_t(n_threads)) & ~size_t(7);
                const uint64_t* p = buf;
                // Four independent 16-byte chains so the adds never limit the loads (the
                // same kernel as bench/bandwidth.h, so the two figures agree).
#if defined(__SSE2__)
                __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
                for (size_t i = begin; i < end; i += 8) {
                    a0 =
                        _mm_add_epi64(a0, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
                    a1 = _mm_add_epi64(
                        a1, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 2)));
                    a2 = _mm_add_epi64(
                        a2, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 4)));
                    a3 = _mm_add_epi64(
                        a3, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 6)));
                }
                alignas(16) uint64_t r[2];
                _mm_store_si128(reinterpret_cast<__m128i*>(r),
                                _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3)));
                const uint64_t s0 = r[0], s1 = r[1], s2 = 0, s3 = 0;
#else
                uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (size_t i = begin; i < end; i += 4) {
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
    ::munmap(mem, n * 8);
    return best;
}

}  // namespace lcx
