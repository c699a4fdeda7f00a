// Prompt products in bf16 on AVX-512 BF16: BF16 weights, and F16 weights rounded to bf16
// where the user asked for it (CpuBackendOptions::f16_as_bf16).
//
// Each thread transposes 16 weight rows at a time into a panel where one 512-bit load is a
// pair of weights (2p, 2p + 1) of each of the 16 rows, and vdpbf16ps multiplies it by a
// broadcast pair of bf16 activations into 16 f32 sums, a lane per row: 32 products per
// instruction where an f32 FMA makes 16. The weights stay in the file's layout (zero-copy);
// the transposition costs a few shuffles per 1 KiB of panel, against the 512 activation
// rows of a prompt that pass over it.
//
// Each product of two bf16 values is exact in f32; the instruction adds the two of a pair
// to its accumulator with rounding and flushes denormals, so outputs differ from the f32
// FMA panels' by summation order (and from f16 weights by the rounding to bf16).
#include <immintrin.h>

#include <algorithm>

#include "backend/cpu/gemm_avx2.h"
#include "backend/cpu/gemm_avx512.h"
#include "backend/cpu/gemm_panel.h"
#include "backend/cpu/panel_buffer.h"
#include "backend/cpu/tile_rows.h"

namespace lcx::cpu {

namespace {

constexpr int kRows = 16;  // weight rows per panel: the lanes of a register

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }

// The 16 x 16 words of r transposed: r[i] becomes word i of every input row.
inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    // u[4q + c], 128-bit lane l: word c + 4l of rows 4q .. 4q + 3.
    for (int q = 0; q < 16; q += 4) {
        u[q] = _mm512_unpacklo_epi64(t[q], t[q + 2]);
        u[q + 1] = _mm512_unpackhi_epi64(t[q], t[q + 2]);
        u[q + 2] = _mm512_unpacklo_epi64(t[q + 1], t[q + 3]);
        u[q + 3] = _mm512_unpackhi_epi64(t[q + 1], t[q + 3]);
    }
    for (int c = 0; c < 4; ++c) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
        const __m512i w0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
        const __m512i v1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
        const __m512i w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_i32x4(v0, v1, 0x88);
        r[c + 8] = _mm512_shuffle_i32x4(v0, v1, 0xdd);
        r[c + 4] = _mm512_shuffle_i32x4(w0, w1, 0x88);
        r[c + 12] = _mm512_shuffle_i32x4(w0, w1, 0xdd);
    }
}

// Up to 32 weights of a row (n of them, the rest zero) as 16 pairs of bf16: BF16 as it is,
// F16 rounded to the nearest bf16 (an f16 value is exact in f32 and never an f32 denormal,
// so the instruction's rounding is fp32_to_bf16's).
template <bool kF16>
inline __m512i load_pairs(const uint16_t* p, int n) {
    const __m512i v =
        n == 32 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16((1ull << n) - 1, p);
    if constexpr (!kF16) {
        return v;
    } else {
        const __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
        const __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1));
        return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    }
}

// Rows [n, n + nr) (nr <= 16; the rest zero) of w as a panel of `pairs` x 16 words: word r of
// pair p is row n + r's weights 2p (low half) and 2p + 1.
template <bool kF16>
void build_panel(const Tensor& w, int64_t n, int nr, int64_t k, uint32_t* panel) {
    const int64_t pairs = k / 2;
    const uint16_t* rows[kRows];
    for (int r = 0; r < nr; ++r) rows[r] = reinterpret_cast<const uint16_t*>(w.row(n + r));
    for (int64_t p = 0; p < pairs; p += 16) {
        const int n_el = int(std::min<int64_t>(32, k - 2 * p));
        __m512i v[16];
        for (int r = 0; r < kRows; ++r)
            v[r] = r < nr ? load_pairs<kF16>(rows[r] + 2 * p, n_el) : _mm512_setzero_si512();
        transpose16(v);
        for (int i = 0; i < n_el / 2; ++i) _mm512_storeu_si512(panel + (p + i) * kRows, v[i]);
    }
}

// P panels (16 P weight rows from n; panel q at W + q pairs 16) against NT activation
// tiles of C rows (ActRows::pt, tile u at xt + u C pairs): per pair, P panel loads, NT C
// broadcasts and P NT C vdpbf16ps, one chain per output. Stores rows below nr only.
template <int P, int NT, int C>
void gemm_tile(const uint32_t* W, int64_t pairs, const uint32_t* xt, int64_t c0, float* y,
               size_t ys, int nr) {
    constexpr int R = NT * C;
    __m512 acc[P][R];
    for (int q = 0; q < P; ++q)
        for (int r = 0; r < R; ++r) acc[q][r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
        __m512i wv[P];
        for (int q = 0; q < P; ++q) wv[q] = _mm512_loadu_si512(W + (q * pairs + p) * kRows);
        for (int u = 0; u < NT; ++u)
            for (int c = 0; c < C; ++c) {
                const __m512i x = _mm512_set1_epi32(int(xt[(u * pairs + p) * C + c]));
                for (int q = 0; q < P; ++q)
                    acc[q][u * C + c] = _mm512_dpbf16_ps(acc[q][u * C + c], as_bh(wv[q]), as_bh(x));
            }
    }
    for (int q = 0; q < P; ++q) {
        const int np = std::min(kRows, nr - kRows * q);
        for (int r = 0; r < R; ++r)
            _mm512_mask_storeu_ps(y + size_t(c0 + r) * ys + q * kRows, __mmask16((1u << np) - 1),
                                  acc[q][r]);
    }
}

// All activation rows against the P panels at W, in the tiles of for_act_tiles (the f32
// panels' order).
template <int P>
void gemm_rows(const uint32_t* W, const ActRows& a, float* y, size_t ys, int nr) {
    static_assert(kActTile == 4);  // 3 tiles of 4 rows x 2 panels: 24 accumulators
    const int64_t pairs = a.k / 2;
    for_act_tiles<kActTile>(a.m, [&](auto nt, auto rows, int64_t c) {
        gemm_tile<P, nt(), rows()>(W, pairs, a.pt.data() + c * pairs, c, y, ys, nr);
    });
}

}  // namespace

template <bool kF16>
void bf16_panel_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y,
                       size_t ys) {
    const int64_t pairs = a.k / 2;
    thread_local PanelBuffer<uint32_t> buffer;
    uint32_t* panel = buffer.get(size_t(pairs) * 2 * kRows);
    for (int64_t n = n0; n < n1; n += 2 * kRows) {
        const int nr = int(std::min<int64_t>(2 * kRows, n1 - n));
        build_panel<kF16>(w, n, std::min(nr, kRows), a.k, panel);
        if (nr > kRows) {
            build_panel<kF16>(w, n + kRows, nr - kRows, a.k, panel + pairs * kRows);
            gemm_rows<2>(panel, a, y + n, ys, nr);
        } else {
            gemm_rows<1>(panel, a, y + n, ys, nr);
        }
    }
}
template void bf16_panel_matmul<false>(const Tensor&, int64_t, int64_t, const ActRows&, float*,
                                       size_t);
template void bf16_panel_matmul<true>(const Tensor&, int64_t, int64_t, const ActRows&, float*,
                                      size_t);

}  // namespace lcx::cpu
