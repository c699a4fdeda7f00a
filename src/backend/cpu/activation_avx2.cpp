// AVX2 elementwise activations.
#include "backend/cpu/kernels.h"
#include "backend/cpu/math_avx2.h"

namespace lcx::cpu {

void swiglu_avx2(const float* g, const float* u, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        // The tail through the same vector code, so every element is computed alike.
        alignas(32) float gt[8] = {}, ut[8] = {}, ot[8];
        for (int64_t j = i; j < n; ++j) {
            gt[j - i] = g[j];
            ut[j - i] = u[j];
        }
        _mm256_store_ps(ot, swiglu8(_mm256_load_ps(gt), _mm256_load_ps(ut)));
        for (int64_t j = i; j < n; ++j) out[j] = ot[j - i];
    }
}

}  // namespace lcx::cpu
