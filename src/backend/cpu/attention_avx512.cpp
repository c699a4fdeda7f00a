// The blocked attention's per-tile work (attention_avx2.cpp holds the rest) in 16-lane
// vectors: the logits of many query rows against a K tile of 16 cells, their
// exponentials, and the rows' probabilities times a V tile. A K tile's 16 cells fill one
// register, so a row's logits are one chain of FMAs where AVX2 needs two, and a V row of
// 64 values is 4 registers. The decode kernel for groups of up to 8 rows takes its logit
// dot products here too, two cells per register. Every element goes through the
// operations of the AVX2 kernels in the same order (the same FMA chains, the same
// exponential polynomial and reduction tree, the same float sums), so both paths give the
// same bits (tests compare them). The helpers copied from math_avx2.h stay copies: an
// inline function shared by files built for different ISAs could be linked in its
// AVX-512 form and then run on an AVX2-only machine.
#include <immintrin.h>

#include <cmath>
#include <type_traits>

#include "backend/cpu/attention.h"

namespace lcx::cpu {

namespace {

constexpr int kTile = 16;  // cells per tile, as in attention_avx2.cpp

// e^x for x <= 0: exp_neg of math_avx2.h, operation for operation, 16 lanes wide.
inline __m512 exp_neg(__m512 x) {
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, z, x);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    const __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(y, _mm512_castsi512_ps(e)));
}

inline __m256 lo(__m512 x) { return _mm512_castps512_ps256(x); }
inline __m256 hi(__m512 x) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
}

// Logits of rows [0, NR) × the tile's 16 cells, as the AVX2 tile loop makes them: dot
// products (broadcast q[i][j] times the tile's row j of KT), scaled, soft-capped, masked
// to -inf, stored at s + i*lds; each row's lane-wise maximum (8 lanes) updated.
template <int NR>
void tile_logits(const float* q, int64_t hd, const float* kt, const AttentionParams& p,
                 const uint16_t* masks, float* s, int64_t lds, float* mx) {
    __m512 acc[NR];
#pragma GCC unroll 12
    for (int i = 0; i < NR; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t j = 0; j < hd; ++j) {
        const __m512 k = _mm512_loadu_ps(kt + j * kTile);
#pragma GCC unroll 12
        for (int i = 0; i < NR; ++i)
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(q[i * hd + j]), k, acc[i]);
    }
    for (int i = 0; i < NR; ++i) {
        __m512 x = _mm512_mul_ps(acc[i], _mm512_set1_ps(p.scale));
        if (p.softcap > 0) {
            alignas(64) float tmp[16];
            _mm512_store_ps(tmp, x);
            for (float& e : tmp) e = p.softcap * std::tanh(e / p.softcap);
            x = _mm512_load_ps(tmp);
        }
        x = _mm512_mask_blend_ps(masks[i], _mm512_set1_ps(-INFINITY), x);
        _mm512_storeu_ps(s + i * lds, x);
        float* m = mx + 8 * i;
        _mm256_storeu_ps(m, _mm256_max_ps(_mm256_max_ps(_mm256_loadu_ps(m), lo(x)), hi(x)));
    }
}

// O rows [0, NR), NC vectors of columns from j (the last one `last` lanes wide) += P · V
// tile [16][hd], where P of row i and cell cc is p[i * ldp + cc * pcs].
template <int NR, int NC>
void tile_pv(const float* p, int64_t ldp, int64_t pcs, const float* vt, int64_t hd, float* o,
             int64_t j, __mmask16 last) {
    auto mask = [last](int c) { return c == NC - 1 ? last : __mmask16(0xFFFF); };
    __m512 acc[NR][NC];
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
        for (int c = 0; c < NC; ++c)
            acc[i][c] = _mm512_maskz_loadu_ps(mask(c), o + i * hd + j + 16 * c);
    for (int cc = 0; cc < kTile; ++cc) {
        __m512 v[NC];
#pragma GCC unroll 4
        for (int c = 0; c < NC; ++c)
            v[c] = _mm512_maskz_loadu_ps(mask(c), vt + cc * hd + j + 16 * c);
#pragma GCC unroll 6
        for (int i = 0; i < NR; ++i) {
            const __m512 b = _mm512_set1_ps(p[i * ldp + cc * pcs]);
#pragma GCC unroll 4
            for (int c = 0; c < NC; ++c) acc[i][c] = _mm512_fmadd_ps(b, v[c], acc[i][c]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
        for (int c = 0; c < NC; ++c)
            _mm512_mask_storeu_ps(o + i * hd + j + 16 * c, mask(c), acc[i][c]);
}

// Rows [0, NR) over all hd columns: 64 at a time, then 32, 16 and a last 8 (hd is a
// multiple of 8).
template <int NR>
void rows_pv(const float* p, int64_t ldp, int64_t pcs, const float* vt, int64_t hd, float* o) {
    constexpr __mmask16 kAll = 0xFFFF;
    int64_t j = 0;
    for (; j + 64 <= hd; j += 64) tile_pv<NR, 4>(p, ldp, pcs, vt, hd, o, j, kAll);
    if (j + 32 <= hd) {
        tile_pv<NR, 2>(p, ldp, pcs, vt, hd, o, j, kAll);
        j += 32;
    }
    if (j + 16 <= hd) {
        tile_pv<NR, 1>(p, ldp, pcs, vt, hd, o, j, kAll);
        j += 16;
    }
    if (j < hd) tile_pv<NR, 1>(p, ldp, pcs, vt, hd, o, j, __mmask16((1u << (hd - j)) - 1));
}

// Lane b of the result = the sum of the 8 lanes of v[b]: reduce8_ps of math_avx2.h, the
// same tree (that header's functions are compiled for AVX2 and stay out of this file).
inline __m256 reduce8(const __m256 v[8]) {
    const __m256 h01 = _mm256_hadd_ps(v[0], v[1]), h23 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 h45 = _mm256_hadd_ps(v[4], v[5]), h67 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// Cells kr[c] and kr[c + 1], values j..j+7 of each, as one register (f16 converted).
inline __m512 two_cells(const uint8_t* a, const uint8_t* b, bool f16, int64_t j) {
    if (f16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2 * j));
        const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * j));
        return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(x), y, 1));
    }
    const __m256 x = _mm256_loadu_ps(reinterpret_cast<const float*>(a) + j);
    const __m256 y = _mm256_loadu_ps(reinterpret_cast<const float*>(b) + j);
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(x)), _mm256_castps_pd(y), 1));
}

// NR (8 or 4) query rows against a tile's 16 cells, two cells per register and 8
// registers per step (8 / NR pairs of cells). NR 8: sums[8c + r] for cell c; NR 4: the
// pair (2k, 2k + 1) in sums[8k ..], rows of cell 2k in lanes 0-3 and of cell 2k + 1 in
// lanes 4-7, as the AVX2 kernel's reduction leaves them.
template <int NR, int HD>
void rows_dots(const float* q, int64_t hd_, const uint8_t* const* kr, bool f16, float* sums) {
    constexpr int kPairs = 8 / NR;
    const int64_t hd = HD > 0 ? HD : hd_;
    for (int c = 0; c < 16; c += 2 * kPairs) {
        __m512 acc[8];
        for (__m512& x : acc) x = _mm512_setzero_ps();
        for (int64_t j = 0; j < hd; j += 8) {
#pragma GCC unroll 2
            for (int pr = 0; pr < kPairs; ++pr) {
                const __m512 kv = two_cells(kr[c + 2 * pr], kr[c + 2 * pr + 1], f16, j);
#pragma GCC unroll 8
                for (int r = 0; r < NR; ++r)
                    acc[pr * NR + r] =
                        _mm512_fmadd_ps(_mm512_broadcast_f32x8(_mm256_loadu_ps(q + r * hd + j)), kv,
                                        acc[pr * NR + r]);
            }
        }
        __m256 first[8], second[8];  // each pair's first and second cell
        for (int r = 0; r < 8; ++r) {
            first[r] = lo(acc[r]);
            second[r] = hi(acc[r]);
        }
        if constexpr (NR == 8) {
            _mm256_storeu_ps(sums + 8 * c, reduce8(first));
            _mm256_storeu_ps(sums + 8 * (c + 1), reduce8(second));
        } else {
            for (int pr = 0; pr < kPairs; ++pr) {
                const __m256* f = first + 4 * pr;
                const __m256* g = second + 4 * pr;
                const __m256 v[8] = {f[0], f[1], f[2], f[3], g[0], g[1], g[2], g[3]};
                _mm256_storeu_ps(sums + 8 * (c / 2 + pr), reduce8(v));
            }
        }
    }
}

}  // namespace

void attn_rows_dots_avx512(int nr, const float* q, int64_t hd, const uint8_t* const* kr, bool f16,
                           float* sums) {
    auto run = [&](auto rows) {
        if (hd == 64)
            rows_dots<rows(), 64>(q, hd, kr, f16, sums);
        else if (hd == 128)
            rows_dots<rows(), 128>(q, hd, kr, f16, sums);
        else
            rows_dots<rows(), 0>(q, hd, kr, f16, sums);
    };
    if (nr == 8)
        run(std::integral_constant<int, 8>());
    else
        run(std::integral_constant<int, 4>());
}

void attn_tile_logits_avx512(const float* q, int64_t hd, const float* kt, int n,
                             const AttentionParams& p, const uint16_t* masks, float* s, int64_t lds,
                             float* mx) {
    switch (n) {
        case 12:
            return tile_logits<12>(q, hd, kt, p, masks, s, lds, mx);
        case 8:
            return tile_logits<8>(q, hd, kt, p, masks, s, lds, mx);
        case 4:
            return tile_logits<4>(q, hd, kt, p, masks, s, lds, mx);
        case 2:
            return tile_logits<2>(q, hd, kt, p, masks, s, lds, mx);
        default:
            for (int i = 0; i < n; ++i)
                tile_logits<1>(q + i * hd, hd, kt, p, masks + i, s + i * lds, lds, mx + 8 * i);
    }
}

double attn_exp_and_sum_avx512(float* s, const uint16_t* seen, int64_t n_tiles, float mx) {
    const __m512 off = _mm512_set1_ps(mx);
    __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
    __m256 fsum = _mm256_setzero_ps();
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        if (seen[ti]) {
            float* e = s + ti * kTile;
            const __m512 x = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(e), off));
            _mm512_storeu_ps(e, x);
            // Cells 0-7, then 8-15, into the same 8 float sums: the AVX2 order.
            fsum = _mm256_add_ps(_mm256_add_ps(fsum, lo(x)), hi(x));
        }
        if (ti % 4 == 3 || ti == n_tiles - 1) {
            sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(fsum)));
            sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(fsum, 1)));
            fsum = _mm256_setzero_ps();
        }
    }
    alignas(32) double st[4];
    _mm256_store_pd(st, _mm256_add_pd(sum0, sum1));
    return (st[0] + st[1]) + (st[2] + st[3]);
}

void attn_tile_pv_avx512(float* p, int64_t ldp, const float* inv, bool f16, const float* vt,
                         int64_t hd, float* o, int64_t n) {
    for (int64_t r = 0; r < n; ++r) {
        float* e = p + r * ldp;
        __m512 w = _mm512_mul_ps(_mm512_loadu_ps(e), _mm512_set1_ps(inv[r]));
        // ggml multiplies the f16 V by the probabilities rounded to f16.
        if (f16) w = _mm512_cvtph_ps(_mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
        _mm512_storeu_ps(e, w);
    }
    attn_rows_pv_avx512(p, ldp, 1, vt, hd, o, n);
}

void attn_rows_pv_avx512(const float* p, int64_t ldp, int64_t pcs, const float* vt, int64_t hd,
                         float* o, int64_t n) {
    int64_t r = 0;
    for (; r + 6 <= n; r += 6) rows_pv<6>(p + r * ldp, ldp, pcs, vt, hd, o + r * hd);
    if (r + 4 <= n) {
        rows_pv<4>(p + r * ldp, ldp, pcs, vt, hd, o + r * hd);
        r += 4;
    }
    for (; r + 2 <= n; r += 2) rows_pv<2>(p + r * ldp, ldp, pcs, vt, hd, o + r * hd);
    for (; r < n; ++r) rows_pv<1>(p + r * ldp, ldp, pcs, vt, hd, o + r * hd);
}

}  // namespace lcx::cpu
