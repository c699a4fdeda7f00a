// Blocked attention with AVX2/FMA/F16C. One work item is a KV head, some of its query
// heads and a block of tokens: R query rows that all read the same K/V rows. The cache is
// walked in tiles of 16 cells, converted to f32 once per tile and reused by every row:
//  1. S = Q·Kᵀ: K tile transposed to [hd][16], each row's 16 logits are 16 FMA chains
//     over hd (broadcast q[j] × 16 cells), then scale, softcap, mask (-inf).
//  2. Softmax per row over the visible tiles: the row's maximum is kept while its logits
//     are made; one pass of exponentials and their sum (in double, as the reference, over
//     float sums of 4 tiles).
//  3. O += P·V: each tile's P normalized (and rounded to f16 for an f16 V cache) just
//     before use, the V tile as [16][hd] rows, 6 query rows × 16 columns of accumulators.
// Calls with few rows per KV head take kernels that read the cache rows directly:
// block_rows (at most 8 rows per item, a row per lane) and block_row1 (one row), with the
// same steps and roundings.
// On the AVX-512 path (kWide) the blocked kernel's per-tile steps and the row-per-lane
// decode kernel's products run 16 lanes wide in attention_avx512.cpp, with the same bits.
// Every output element is the same sequence of operations whatever the item's extent,
// so results do not depend on the thread count. Tiles no query row of the item can see
// (past a causal diagonal, before a window, empty cells) are skipped.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/math_avx2.h"
#include "common/fp16.h"
#include "quant/quant.h"

namespace lcx::cpu {

namespace {

constexpr int kTile = 16;

// Lanes whose bit (lane + shift) of `bits` is set.
inline __m256 bit_mask(uint32_t bits, int shift) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32(int(bits >> shift)), sel);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, sel));
}

// Row (cell) of a cache as hd floats.
inline void load_row(DType t, const uint8_t* src, float* dst, int64_t hd) {
    if (t == DType::F16) {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
        for (int64_t j = 0; j < hd; j += 8)
            _mm256_storeu_ps(
                dst + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j))));
    } else if (t == DType::F32) {
        std::memcpy(dst, src, size_t(hd) * 4);
    } else {
        dequantize_row(t, src, dst, hd);
    }
}

// dst[i * lds + k] = src[k * lss + i] for an 8 × 8 block.
inline void transpose8(const float* src, int64_t lss, float* dst, int64_t lds) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lss);
    transpose8_ps(r);
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * lds, r[i]);
}

// S rows [r, r+NR) × the tile's 16 cells: kt is [hd][16], q rows hd apart. The sums
// live in locals (the loops fully unrolled) so they stay in registers; accumulating into
// `out` directly kept them in memory, a store per FMA.
template <int NR>
inline void tile_dots(const float* q, int64_t hd, const float* kt, __m256 (&out)[6][2]) {
    __m256 acc[NR][2];
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < hd; ++j) {
        const __m256 k0 = _mm256_loadu_ps(kt + j * kTile), k1 = _mm256_loadu_ps(kt + j * kTile + 8);
#pragma GCC unroll 6
        for (int i = 0; i < NR; ++i) {
            const __m256 b = _mm256_broadcast_ss(q + i * hd + j);
            acc[i][0] = _mm256_fmadd_ps(b, k0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(b, k1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i) {
        out[i][0] = acc[i][0];
        out[i][1] = acc[i][1];
    }
}

// O rows [r, r+NR) columns [j, j+8*NC) += P · V tile [16][hd], where P of row i and
// cell cc is p[i * ldp + cc * pcs].
template <int NR, int NC>
inline void tile_pv(const float* p, int64_t ldp, int64_t pcs, const float* vt, int64_t hd, float* o,
                    int64_t j) {
    __m256 acc[NR][NC];
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i)
#pragma GCC unroll 2
        for (int c = 0; c < NC; ++c) acc[i][c] = _mm256_loadu_ps(o + i * hd + j + 8 * c);
    for (int cc = 0; cc < kTile; ++cc) {
        __m256 v[NC];
#pragma GCC unroll 2
        for (int c = 0; c < NC; ++c) v[c] = _mm256_loadu_ps(vt + cc * hd + j + 8 * c);
#pragma GCC unroll 6
        for (int i = 0; i < NR; ++i) {
            const __m256 b = _mm256_broadcast_ss(p + i * ldp + cc * pcs);
#pragma GCC unroll 2
            for (int c = 0; c < NC; ++c) acc[i][c] = _mm256_fmadd_ps(b, v[c], acc[i][c]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i)
#pragma GCC unroll 2
        for (int c = 0; c < NC; ++c) _mm256_storeu_ps(o + i * hd + j + 8 * c, acc[i][c]);
}

// O rows [r, r+NR) += P rows · V tile over all hd columns, 16 at a time.
template <int NR>
inline void rows_pv(const float* p, int64_t ldp, int64_t pcs, const float* vt, int64_t hd,
                    float* o) {
    int64_t j = 0;
    for (; j + 16 <= hd; j += 16) tile_pv<NR, 2>(p, ldp, pcs, vt, hd, o, j);
    if (j < hd) tile_pv<NR, 1>(p, ldp, pcs, vt, hd, o, j);
}

// Software prefetch of the cache rows of tile ti + kPrefetchTiles, while tile ti is
// computed. In a decode step the cache comes from memory (the weights streamed through
// L3 since the layer last read it); even as one run per head (the KV cache's layout),
// decode against 32768 cells measured 5.3-6.3 ms with it and 6.8-7.5 without.
constexpr int64_t kPrefetchTiles = 2;
inline void prefetch_tile(const uint8_t* (AttnArgs::*row)(int64_t, int64_t) const,
                          const AttnArgs& a, int64_t hk, int64_t ti, size_t row_bytes) {
    const int64_t c0 = (ti + kPrefetchTiles) * kTile, c1 = std::min(c0 + kTile, a.n_kv);
    for (int64_t c = c0; c < c1; ++c) {
        const char* r = reinterpret_cast<const char*>((a.*row)(hk, c));
        for (size_t off = 0; off < row_bytes; off += 64) _mm_prefetch(r + off, _MM_HINT_T0);
    }
}

// How many of the `left` remaining query rows the tile loops take next: 6, 4, 2 or 1.
// Each row is 2 (Q·K) or NC (P·V) chains of dependent FMAs, so a step of one row waits on
// the FMA latency; 8 rows (decode with 8 query heads per KV head) go as 4 + 4, not
// 6 + 1 + 1. A row's operations are the same whichever step takes it.
inline int64_t rows_per_step(int64_t left) {
    if (left >= 6 && left != 7 && left != 8) return 6;
    if (left >= 4) return 4;
    return left >= 2 ? 2 : 1;
}

// The K tile of cells [16 ti, 16 ti + 16) as KT [hd][16] (zero past n_kv). An f16 cache is
// converted and transposed in registers, 8 cells × 8 values at a time; other types are
// staged as rows in `rows` [16][hd] first.
void load_k_tile(const AttnArgs& a, int64_t hk, int64_t ti, float* rows, float* kt) {
    const int64_t hd = a.hd;
    if (a.kt == DType::F16) {
        for (int half = 0; half < 2; ++half) {
            const uint16_t* src[8];
            int n = 0;  // cells of this half inside the cache
            for (int i = 0; i < 8; ++i) {
                const int64_t c = ti * kTile + 8 * half + i;
                if (c < a.n_kv) n = i + 1;
                src[i] = c < a.n_kv ? reinterpret_cast<const uint16_t*>(a.k_row(hk, c)) : nullptr;
            }
            for (int64_t j = 0; j < hd; j += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; ++i)
                    r[i] = i < n ? _mm256_cvtph_ps(_mm_loadu_si128(
                                       reinterpret_cast<const __m128i*>(src[i] + j)))
                                 : _mm256_setzero_ps();
                transpose8_ps(r);
                for (int i = 0; i < 8; ++i) _mm256_storeu_ps(kt + (j + i) * kTile + 8 * half, r[i]);
            }
        }
        return;
    }
    for (int cc = 0; cc < kTile; ++cc) {
        const int64_t c = ti * kTile + cc;
        float* dst = rows + cc * hd;
        if (c < a.n_kv)
            load_row(a.kt, a.k_row(hk, c), dst, hd);
        else
            std::fill(dst, dst + hd, 0.0f);
    }
    for (int half = 0; half < 2; ++half)
        for (int64_t j = 0; j < hd; j += 8)
            transpose8(rows + half * 8 * hd + j, hd, kt + j * kTile + half * 8, kTile);
}

// The V tile of cells [16 ti, 16 ti + 16) as rows [16][hd]. Cells no row of the item sees
// (`seen` bit clear) are zero rows: empty cells may hold anything.
void load_v_tile(const AttnArgs& a, int64_t hk, int64_t ti, uint32_t seen, float* vt) {
    for (int cc = 0; cc < kTile; ++cc) {
        float* dst = vt + cc * a.hd;
        if ((seen >> cc) & 1)
            load_row(a.vt, a.v_row(hk, ti * kTile + cc), dst, a.hd);
        else
            std::fill(dst, dst + a.hd, 0.0f);
    }
}

// Logits from their dot products: scaled, then soft-capped (cap · tanh(x / cap)) when the
// model asks for it.
inline __m256 scaled_logits(__m256 dots, const AttentionParams& p) {
    __m256 x = _mm256_mul_ps(dots, _mm256_set1_ps(p.scale));
    if (p.softcap > 0) {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, x);
        for (float& e : tmp) e = p.softcap * std::tanh(e / p.softcap);
        x = _mm256_load_ps(tmp);
    }
    return x;
}

// A cache row's 8 values from j on, as floats: f16 (converted as loaded) or f32.
inline __m256 load8(bool f16, const uint8_t* row, int64_t j) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j)))
               : _mm256_loadu_ps(reinterpret_cast<const float*>(row) + j);
}

// A query row in the precision of the K·Q product: f16-rounded for an f16 cache,
// Q8_0-quantized for a Q8_0 one.
void load_query(const AttnArgs& a, const float* src, float* dst) {
    const int64_t hd = a.hd;
    if (a.kt == DType::F16) {
        for (int64_t j = 0; j < hd; j += 8)
            _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(src + j),
                                                                      _MM_FROUND_TO_NEAREST_INT)));
    } else if (a.kt == DType::Q8_0) {
        BlockQ8_0 blk;
        for (int64_t b = 0; b < hd / 32; ++b) {
            quantize_row_q8_0(src + b * 32, &blk, 32);
            const float d = fp16_to_fp32(blk.d);
            for (int j = 0; j < 32; ++j) dst[b * 32 + j] = float(blk.qs[j]) * d;
        }
    } else {
        std::memcpy(dst, src, size_t(hd) * 4);
    }
}

struct Scratch {
    std::vector<float> q, s, o, kt, vt;
    std::vector<float> mx;       // per row: lane-wise max of its logits so far (8 floats)
    std::vector<float> inv;      // per row: 1 / the sum of its exponentials
    std::vector<uint16_t> mask;  // [tile][token]: visible cells of the tile
    std::vector<uint16_t> seen;  // [tile]: cells of the tile some token of the item sees
    template <class T>
    static T* get(std::vector<T>& v, size_t n) {
        if (v.size() < n) v.resize(n);
        return v.data();
    }
};

// mask[ti * ntok + tl]: bit cc set when token t0 + tl sees cell 16 ti + cc, and seen[ti]
// the cells some token sees. Eight cells at a time: their positions (-1 for empty cells
// and those past n_kv) against the token's causal limit and window.
void visibility(const AttnArgs& a, int64_t t0, int64_t ntok, int64_t n_tiles, uint16_t* mask,
                uint16_t* seen) {
    const __m256i step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), none = _mm256_set1_epi32(-1);
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        __m256i cp[2];
        for (int half = 0; half < 2; ++half) {
            const int64_t c = ti * kTile + 8 * half;
            if (a.kv_positions && c + 8 <= a.n_kv) {
                cp[half] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.kv_positions + c));
            } else if (a.kv_positions) {
                alignas(32) int32_t t[8];
                for (int i = 0; i < 8; ++i) t[i] = c + i < a.n_kv ? a.kv_positions[c + i] : -1;
                cp[half] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
            } else {
                const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(int32_t(c)), step);
                const __m256i past = _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(a.n_kv)), idx);
                cp[half] = _mm256_blendv_epi8(none, idx, past);
            }
        }
        uint32_t any = 0;
        for (int64_t tl = 0; tl < ntok; ++tl) {
            const int32_t pos = a.positions[t0 + tl];
            // Window: pos - cp < w, i.e. cp > pos - w (clamped: positions may be anything).
            const int64_t lo = a.p.sliding_window > 0 ? int64_t(pos) - a.p.sliding_window : -1;
            const __m256i vlo = _mm256_set1_epi32(int32_t(std::max<int64_t>(lo, -1)));
            const __m256i vpos = _mm256_set1_epi32(pos);
            uint32_t m = 0;
            for (int half = 0; half < 2; ++half) {
                __m256i vis = _mm256_cmpgt_epi32(cp[half], vlo);
                if (a.p.causal) vis = _mm256_andnot_si256(_mm256_cmpgt_epi32(cp[half], vpos), vis);
                m |= uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(vis))) << (8 * half);
            }
            mask[ti * ntok + tl] = uint16_t(m);
            any |= m;
        }
        seen[ti] = uint16_t(any);
    }
}

// Each seen tile's n_vec vectors of 8 logits (tile ti's at s + 8 n_vec ti) replaced by
// e^(x - off), lane by lane; their sums, taken in float over 4 tiles at a time (at fixed
// tile indices, so a sum does not depend on which other tiles an item visits), are added
// in double to sum0 (lanes 0-3) and sum1 (lanes 4-7).
inline void exp_in_place(float* s, int n_vec, const uint16_t* seen, int64_t n_tiles, __m256 off,
                         __m256d& sum0, __m256d& sum1) {
    __m256 fsum = _mm256_setzero_ps();
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        if (seen[ti])
            for (int v = 0; v < n_vec; ++v) {
                float* e = s + (ti * n_vec + v) * 8;
                const __m256 x = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(e), off));
                _mm256_storeu_ps(e, x);
                fsum = _mm256_add_ps(fsum, x);
            }
        if (ti % 4 == 3 || ti == n_tiles - 1) {
            sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(fsum)));
            sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(fsum, 1)));
            fsum = _mm256_setzero_ps();
        }
    }
}

// A row's logits s (16 per tile, tiles the item does not visit skipped) replaced by
// e^(s - mx); returns their sum, in float over 4 tiles and then in double, as the
// reference sums in double.
double exp_and_sum(float* s, const uint16_t* seen, int64_t n_tiles, float mx) {
    __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
    exp_in_place(s, kTile / 8, seen, n_tiles, _mm256_set1_ps(mx), sum0, sum1);
    alignas(32) double st[4];
    _mm256_store_pd(st, _mm256_add_pd(sum0, sum1));
    return (st[0] + st[1]) + (st[2] + st[3]);
}

// kWide: the products run in the AVX-512 kernels (attention_avx512.cpp), with the same
// bits; the rest is shared.
template <bool kWide>
void block_avx2(const AttnArgs& a, int64_t hk, int64_t h0, int64_t h1, int64_t t0, int64_t t1) {
    thread_local Scratch sc;
    const int64_t hd = a.hd, nh = a.n_head, n_kv = a.n_kv;
    const int64_t nhs = h1 - h0, ntok = t1 - t0, R = nhs * ntok;
    // Rows of S one tile longer than needed: a power-of-two stride put the rows' cells of a
    // tile in the same L1 sets, and the tile loops then missed on every row.
    const int64_t n_tiles = (n_kv + kTile - 1) / kTile, lds = n_tiles * kTile + kTile;
    const AttentionParams& p = a.p;
    float* Q = Scratch::get(sc.q, size_t(R * hd));
    float* S = Scratch::get(sc.s, size_t(R * lds));
    float* O = Scratch::get(sc.o, size_t(R * hd));
    float* KT = Scratch::get(sc.kt, size_t(hd * kTile));
    float* VT = Scratch::get(sc.vt, size_t(hd * kTile));
    float* MX = Scratch::get(sc.mx, size_t(R * 8));
    float* INV = Scratch::get(sc.inv, size_t(R));
    uint16_t* mask = Scratch::get(sc.mask, size_t(n_tiles * ntok));
    uint16_t* seen = Scratch::get(sc.seen, size_t(n_tiles));

    for (int64_t r = 0; r < R; ++r)
        load_query(a, a.q + ((t0 + r / nhs) * nh + h0 + r % nhs) * hd, Q + r * hd);
    visibility(a, t0, ntok, n_tiles, mask, seen);
    bool any_active = false;
    for (int64_t ti = 0; ti < n_tiles; ++ti) any_active |= seen[ti] != 0;
    std::fill(O, O + R * hd, 0.0f);

    if (any_active) {
        // 1. Logits.
        const __m256 ninf = _mm256_set1_ps(-INFINITY);
        std::fill(MX, MX + R * 8, -INFINITY);
        for (int64_t ti = 0; ti < n_tiles; ++ti) {
            if (!seen[ti]) continue;
            prefetch_tile(&AttnArgs::k_row, a, hk, ti, a.k_row_bytes);
            load_k_tile(a, hk, ti, VT, KT);
            auto finish = [&](int64_t r, __m256(&acc)[2]) {
                const uint32_t m = mask[ti * ntok + r / nhs];
                float* s = S + r * lds + ti * kTile;
                __m256 mx = _mm256_loadu_ps(MX + 8 * r);
                for (int half = 0; half < 2; ++half) {
                    const __m256 x =
                        _mm256_blendv_ps(ninf, scaled_logits(acc[half], p), bit_mask(m, 8 * half));
                    _mm256_storeu_ps(s + 8 * half, x);
                    mx = _mm256_max_ps(mx, x);
                }
                _mm256_storeu_ps(MX + 8 * r, mx);
            };
            if constexpr (kWide) {
                uint16_t masks[12];
                for (int64_t r = 0, n = 0; r < R; r += n) {
                    // 12 rows a step, 16 as 8 + 8 (a token block's 64 rows: 12 × 4 + 8 × 2).
                    const int64_t left = R - r;
                    n = left == 16 ? 8 : left >= 12 ? 12 : left >= 8 ? 8 : left >= 4 ? 4 : left;
                    for (int64_t i = 0; i < n; ++i) masks[i] = mask[ti * ntok + (r + i) / nhs];
                    attn_tile_logits_avx512(Q + r * hd, hd, KT, int(n), p, masks,
                                            S + r * lds + ti * kTile, lds, MX + 8 * r);
                }
                continue;
            }
            __m256 acc[6][2];
            for (int64_t r = 0, n = 0; r < R; r += n) {
                n = rows_per_step(R - r);
                if (n == 6)
                    tile_dots<6>(Q + r * hd, hd, KT, acc);
                else if (n == 4)
                    tile_dots<4>(Q + r * hd, hd, KT, acc);
                else if (n == 2)
                    tile_dots<2>(Q + r * hd, hd, KT, acc);
                else
                    tile_dots<1>(Q + r * hd, hd, KT, acc);
                for (int64_t i = 0; i < n; ++i) finish(r + i, acc[i]);
            }
        }

        // 2. Softmax per row over the active tiles (the maxima came with the logits).
        for (int64_t r = 0; r < R; ++r) {
            float* s = S + r * lds;
            const float mx = hmax(_mm256_loadu_ps(MX + 8 * r));
            if (mx == -INFINITY) {  // sees nothing: zero probabilities, zero output
                for (int64_t ti = 0; ti < n_tiles; ++ti)
                    if (seen[ti]) std::fill(s + ti * kTile, s + ti * kTile + kTile, 0.0f);
                INV[r] = 0.0f;
                continue;
            }
            const double sum = kWide ? attn_exp_and_sum_avx512(s, seen, n_tiles, mx)
                                     : exp_and_sum(s, seen, n_tiles, mx);
            INV[r] = sum > 0 ? float(1.0 / sum) : 0.0f;
        }

        // 3. O += P·V.
        for (int64_t ti = 0; ti < n_tiles; ++ti) {
            const uint32_t any = seen[ti];
            if (!any) continue;
            prefetch_tile(&AttnArgs::v_row, a, hk, ti, a.v_row_bytes);
            load_v_tile(a, hk, ti, any, VT);
            if constexpr (kWide) {
                attn_tile_pv_avx512(S + ti * kTile, lds, INV, a.vt == DType::F16, VT, hd, O, R);
                continue;
            }
            // P of the tile: normalized here, while the tile's column of S is in L1
            // (a separate pass over all of S went through L2).
            float* P = S + ti * kTile;
            for (int64_t r = 0; r < R; ++r) {
                const __m256 inv = _mm256_set1_ps(INV[r]);
                for (int half = 0; half < 2; ++half) {
                    float* e = P + r * lds + 8 * half;
                    __m256 w = _mm256_mul_ps(_mm256_loadu_ps(e), inv);
                    // ggml multiplies the f16 V by the probabilities rounded to f16.
                    if (a.vt == DType::F16)
                        w = _mm256_cvtph_ps(_mm256_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
                    _mm256_storeu_ps(e, w);
                }
            }
            for (int64_t r = 0, n = 0; r < R; r += n) {
                n = rows_per_step(R - r);
                if (n == 6)
                    rows_pv<6>(P + r * lds, lds, 1, VT, hd, O + r * hd);
                else if (n == 4)
                    rows_pv<4>(P + r * lds, lds, 1, VT, hd, O + r * hd);
                else if (n == 2)
                    rows_pv<2>(P + r * lds, lds, 1, VT, hd, O + r * hd);
                else
                    rows_pv<1>(P + r * lds, lds, 1, VT, hd, O + r * hd);
            }
        }
    }

    for (int64_t r = 0; r < R; ++r) {
        const int64_t t = t0 + r / nhs, h = h0 + r % nhs;
        std::memcpy(a.out + (t * nh + h) * hd, O + r * hd, size_t(hd) * 4);
    }
}

// Few rows (decode: one token's query heads of a KV head). Transposing and staging a K
// tile for a handful of rows costs as much as the products, so here each row is a lane:
// a cell's K row is converted as it is loaded and multiplied into every row's
// accumulator, and reduce8_ps turns the 8 accumulators into one vector of logits, row r
// in lane r. Softmax and P·V then run on all rows at once, with the tile kernels'
// roundings: exponentials against the row's maximum, their sum in float over 4 tiles and
// then in double, the probabilities normalized (and rounded to f16 for an f16 V cache)
// before P·V. NR = 8 takes one cell per step, NR = 4 two (rows 4-7 then stay empty:
// -inf logits, zero weights). Each output row goes through the same operations for
// either NR and whatever the item's other rows, so the results do not depend on how the
// work is split.
template <int NR, int HD, bool kWide>
void block_rows(const AttnArgs& a, int64_t hk, int64_t h0, int64_t h1, int64_t t0, int64_t t1) {
    constexpr int kCells = 8 / NR;  // cells per step
    thread_local Scratch sc;
    // A head_dim known at compile time puts every Q operand at a fixed offset from one
    // register and unrolls the dot products.
    const int64_t hd = HD > 0 ? HD : a.hd, nh = a.n_head, n_kv = a.n_kv;
    const int64_t nhs = h1 - h0, ntok = t1 - t0, R = nhs * ntok;
    const int64_t n_tiles = (n_kv + kTile - 1) / kTile;
    const AttentionParams& p = a.p;
    // Q rows [NR][hd] (rows past R zero), then a zero K row (f32 or f16) for cells past n_kv.
    float* Q = Scratch::get(sc.q, size_t((NR + 1) * hd));
    float* O = Scratch::get(sc.o, size_t(8 * hd));
    float* VT = Scratch::get(sc.vt, size_t(kTile * hd));
    float* S = Scratch::get(sc.s, size_t(n_tiles * kTile * 8));  // [cell][row]
    uint16_t* mask = Scratch::get(sc.mask, size_t(n_tiles * ntok));
    uint16_t* seen = Scratch::get(sc.seen, size_t(n_tiles));
    std::fill(Q, Q + (NR + 1) * hd, 0.0f);
    for (int64_t r = 0; r < R; ++r)
        load_query(a, a.q + ((t0 + r / nhs) * nh + h0 + r % nhs) * hd, Q + r * hd);
    const uint8_t* zero_row = reinterpret_cast<const uint8_t*>(Q + NR * hd);
    visibility(a, t0, ntok, n_tiles, mask, seen);
    std::fill(O, O + 8 * hd, 0.0f);

    const bool f16k = a.kt == DType::F16;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    // 1. Logits, row r in lane r: scaled, soft-capped, masked; the maxima as they come.
    __m256 mx = ninf;
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        if (!seen[ti]) continue;
        prefetch_tile(&AttnArgs::k_row, a, hk, ti, a.k_row_bytes);
        // Visible rows of each cell, a bit per row (token tl's rows are nhs bits).
        uint32_t rows_of[kTile] = {};
        for (int64_t tl = 0; tl < ntok; ++tl) {
            const uint32_t m = mask[ti * ntok + tl], bits = ((1u << nhs) - 1) << (tl * nhs);
            for (int cc = 0; cc < kTile; ++cc) rows_of[cc] |= (m >> cc) & 1 ? bits : 0;
        }
        // Cells cc .. cc + kCells - 1 from their dot products (cell cc + i's in lanes
        // [i NR, i NR + NR) of sums): scaled, soft-capped, masked, stored; the maxima.
        auto finish = [&](int cc, __m256 sums) {
            for (int i = 0; i < kCells; ++i) {
                const __m256 x =
                    NR == 8 ? sums
                            : _mm256_zextps128_ps256(i == 0 ? _mm256_castps256_ps128(sums)
                                                            : _mm256_extractf128_ps(sums, 1));
                const __m256 l =
                    _mm256_blendv_ps(ninf, scaled_logits(x, p), bit_mask(rows_of[cc + i], 0));
                _mm256_storeu_ps(S + (ti * kTile + cc + i) * 8, l);
                mx = _mm256_max_ps(mx, l);
            }
        };
        if constexpr (kWide) {
            const uint8_t* kr[kTile];
            for (int cc = 0; cc < kTile; ++cc) {
                const int64_t c = ti * kTile + cc;
                kr[cc] = c < n_kv ? a.k_row(hk, c) : zero_row;
            }
            alignas(32) float sums[kTile * 8];
            attn_rows_dots_avx512(NR, Q, hd, kr, f16k, sums);
            for (int cc = 0; cc < kTile; cc += kCells) finish(cc, _mm256_load_ps(sums + cc * NR));
            continue;
        }
        for (int cc = 0; cc < kTile; cc += kCells) {
            const uint8_t* kr[kCells];
            for (int i = 0; i < kCells; ++i) {
                const int64_t c = ti * kTile + cc + i;
                kr[i] = c < n_kv ? a.k_row(hk, c) : zero_row;
            }
            __m256 acc[8];
            for (__m256& x : acc) x = _mm256_setzero_ps();
            for (int64_t j = 0; j < hd; j += 8) {
#pragma GCC unroll 2
                for (int i = 0; i < kCells; ++i) {
                    const __m256 kv = load8(f16k, kr[i], j);
#pragma GCC unroll 8
                    for (int r = 0; r < NR; ++r)
                        acc[i * NR + r] =
                            _mm256_fmadd_ps(_mm256_loadu_ps(Q + r * hd + j), kv, acc[i * NR + r]);
                }
            }
            finish(cc, reduce8_ps(acc));
        }
    }
    // 2. Exponentials and their sums per row: in float over 4 tiles (at fixed tile
    // indices), then in double. Rows that see nothing take 0 as their maximum: their
    // exponentials are e^-inf = 0 and their output zero.
    const __m256 off =
        _mm256_blendv_ps(mx, _mm256_setzero_ps(), _mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ));
    __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
    exp_in_place(S, kTile, seen, n_tiles, off, sum0, sum1);
    alignas(32) double sums[8];
    _mm256_store_pd(sums, sum0);
    _mm256_store_pd(sums + 4, sum1);
    alignas(32) float inv[8];
    for (int r = 0; r < 8; ++r) inv[r] = sums[r] > 0 ? float(1.0 / sums[r]) : 0.0f;
    const __m256 vinv = _mm256_load_ps(inv);
    // 3. O += P·V, P of row r and cell c at S[c][r], normalized (and rounded to f16 for an
    // f16 V cache, as ggml's V·P product does) tile by tile.
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        if (!seen[ti]) continue;
        prefetch_tile(&AttnArgs::v_row, a, hk, ti, a.v_row_bytes);
        load_v_tile(a, hk, ti, seen[ti], VT);
        float* P = S + ti * kTile * 8;
        for (int cc = 0; cc < kTile; ++cc) {
            __m256 w = _mm256_mul_ps(_mm256_loadu_ps(P + cc * 8), vinv);
            if (a.vt == DType::F16)
                w = _mm256_cvtph_ps(_mm256_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
            _mm256_storeu_ps(P + cc * 8, w);
        }
        if constexpr (kWide)
            attn_rows_pv_avx512(P, 1, 8, VT, hd, O, NR);
        else
            for (int r = 0; r < NR; r += 4) rows_pv<4>(P + r, 1, 8, VT, hd, O + r * hd);
    }
    for (int64_t r = 0; r < R; ++r) {
        const int64_t t = t0 + r / nhs, h = h0 + r % nhs;
        std::memcpy(a.out + (t * nh + h) * hd, O + r * hd, size_t(hd) * 4);
    }
}

template <int NR, bool kWide>
void block_rows_hd(const AttnArgs& a, int64_t hk, int64_t h0, int64_t h1, int64_t t0, int64_t t1) {
    if (a.hd == 64)
        block_rows<NR, 64, kWide>(a, hk, h0, h1, t0, t1);
    else if (a.hd == 128)
        block_rows<NR, 128, kWide>(a, hk, h0, h1, t0, t1);
    else
        block_rows<NR, 0, kWide>(a, hk, h0, h1, t0, t1);
}

// o[0, 8 NB) += Σ_c e[c] v_c[0, 8 NB) over n cells (v_c = vrows[c] from column
// j0 on): NB independent accumulators, each V value converted once.
template <int NB>
inline void row_pv(const float* e, const uint8_t* const* vrows, int n, bool f16, int64_t j0,
                   float* o) {
    __m256 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm256_loadu_ps(o + 8 * b);
    for (int c = 0; c < n; ++c) {
        const __m256 w = _mm256_broadcast_ss(e + c);
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b)
            acc[b] = _mm256_fmadd_ps(w, load8(f16, vrows[c], j0 + 8 * b), acc[b]);
    }
    for (int b = 0; b < NB; ++b) _mm256_storeu_ps(o + 8 * b, acc[b]);
}

// One query row per KV head and call (multi-head attention decoding one token): nothing
// to share a K or V row with, so each is read once, straight from the cache. K·Q takes 8
// cells at a time, a cell per accumulator, and reduce8_ps gives their 8 logits in one
// vector; P·V broadcasts each weight over up to 64 columns of accumulators. Every K and V
// value is converted once, the least an f16 cache allows; the tile kernels transposed
// and staged each tile for this single row. Softmax and roundings as in block_rows.
template <int HD>
void block_row1(const AttnArgs& a, int64_t hk, int64_t h0, int64_t, int64_t t0, int64_t) {
    thread_local Scratch sc;
    const int64_t hd = HD > 0 ? HD : a.hd, n_kv = a.n_kv;
    const int64_t n_tiles = (n_kv + kTile - 1) / kTile;
    const AttentionParams& p = a.p;
    float* Q = Scratch::get(sc.q, size_t(2 * hd));  // the query, then a zero row
    float* O = Scratch::get(sc.o, size_t(hd));
    float* S = Scratch::get(sc.s, size_t(n_tiles * kTile));
    uint16_t* mask = Scratch::get(sc.mask, size_t(n_tiles));
    uint16_t* seen = Scratch::get(sc.seen, size_t(n_tiles));
    std::fill(Q + hd, Q + 2 * hd, 0.0f);
    load_query(a, a.q + (t0 * a.n_head + h0) * hd, Q);
    const uint8_t* zero_row = reinterpret_cast<const uint8_t*>(Q + hd);
    visibility(a, t0, 1, n_tiles, mask, seen);
    std::fill(O, O + hd, 0.0f);

    const bool f16k = a.kt == DType::F16, f16v = a.vt == DType::F16;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    // 1. Logits, cell c in S[c]: scaled, soft-capped, masked.
    __m256 mx = ninf;
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        if (!seen[ti]) continue;
        prefetch_tile(&AttnArgs::k_row, a, hk, ti, a.k_row_bytes);
        const uint32_t m = mask[ti];
        for (int cc = 0; cc < kTile; cc += 8) {
            const uint8_t* kr[8];
            for (int i = 0; i < 8; ++i)
                kr[i] = (m >> (cc + i)) & 1 ? a.k_row(hk, ti * kTile + cc + i) : zero_row;
            __m256 acc[8];
            for (__m256& x : acc) x = _mm256_setzero_ps();
            for (int64_t j = 0; j < hd; j += 8) {
                const __m256 q = _mm256_loadu_ps(Q + j);
#pragma GCC unroll 8
                for (int i = 0; i < 8; ++i)
                    acc[i] = _mm256_fmadd_ps(q, load8(f16k, kr[i], j), acc[i]);
            }
            const __m256 x =
                _mm256_blendv_ps(ninf, scaled_logits(reduce8_ps(acc), p), bit_mask(m, cc));
            _mm256_storeu_ps(S + ti * kTile + cc, x);
            mx = _mm256_max_ps(mx, x);
        }
    }
    const float m_all = hmax(mx);
    if (m_all == -INFINITY) {  // sees nothing: zero output
        std::memset(a.out + (t0 * a.n_head + h0) * hd, 0, size_t(hd) * 4);
        return;
    }
    // 2. Exponentials and their sum, as a tile kernel's row.
    const double sum = exp_and_sum(S, seen, n_tiles, m_all);
    const __m256 inv = _mm256_set1_ps(sum > 0 ? float(1.0 / sum) : 0.0f);
    // 3. O += P·V, each tile's P normalized (and rounded to f16 for an f16 V cache) first.
    const uint8_t* vrows[kTile];
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
        if (!seen[ti]) continue;
        prefetch_tile(&AttnArgs::v_row, a, hk, ti, a.v_row_bytes);
        const uint32_t m = mask[ti];
        float* P = S + ti * kTile;
        for (int half = 0; half < 2; ++half) {
            __m256 w = _mm256_mul_ps(_mm256_loadu_ps(P + 8 * half), inv);
            if (f16v) w = _mm256_cvtph_ps(_mm256_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
            _mm256_storeu_ps(P + 8 * half, w);
        }
        // Cells the row does not see are zero rows: they may hold anything.
        for (int cc = 0; cc < kTile; ++cc)
            vrows[cc] = (m >> cc) & 1 ? a.v_row(hk, ti * kTile + cc) : zero_row;
        int64_t j = 0;
        for (; j + 64 <= hd; j += 64) row_pv<8>(P, vrows, kTile, f16v, j, O + j);
        for (; j + 32 <= hd; j += 32) row_pv<4>(P, vrows, kTile, f16v, j, O + j);
        for (; j + 16 <= hd; j += 16) row_pv<2>(P, vrows, kTile, f16v, j, O + j);
        for (; j < hd; j += 8) row_pv<1>(P, vrows, kTile, f16v, j, O + j);
    }
    std::memcpy(a.out + (t0 * a.n_head + h0) * hd, O, size_t(hd) * 4);
}

void block_row1_avx2(const AttnArgs& a, int64_t hk, int64_t h0, int64_t h1, int64_t t0,
                     int64_t t1) {
    if (a.hd == 64)
        block_row1<64>(a, hk, h0, h1, t0, t1);
    else if (a.hd == 128)
        block_row1<128>(a, hk, h0, h1, t0, t1);
    else
        block_row1<0>(a, hk, h0, h1, t0, t1);
}

template <bool kWide>
void block_rows_avx2(const AttnArgs& a, int64_t hk, int64_t h0, int64_t h1, int64_t t0,
                     int64_t t1) {
    if ((h1 - h0) * (t1 - t0) <= 4)
        block_rows_hd<4, kWide>(a, hk, h0, h1, t0, t1);
    else
        block_rows_hd<8, kWide>(a, hk, h0, h1, t0, t1);
}

}  // namespace

AttnBlockFn attention_block(const AttnArgs& a, CpuPath path) {
    if (path != CpuPath::Avx2 && path != CpuPath::Avx512) return nullptr;
    if (a.hd <= 0 || a.hd % 8 != 0) return nullptr;
    for (DType t : {a.kt, a.vt})
        if (t != DType::F32 && t != DType::F16 && !(t == DType::Q8_0 && a.hd % 32 == 0))
            return nullptr;
    // Chosen for the whole call, so that a row's result never depends on the split: one
    // row per KV head (multi-head attention, one token), the single-row kernel; at most 8
    // rows per item in every split (the call's tokens times a KV head's query heads), the
    // row-per-lane kernel.
    const int64_t group = a.n_head_kv > 0 ? a.n_head / a.n_head_kv : 0;
    const int64_t rows = a.n_tokens * group;
    if (rows == 1 && a.kt != DType::Q8_0 && a.vt != DType::Q8_0) return &block_row1_avx2;
    if (rows <= 8 && a.kt != DType::Q8_0)
        return path == CpuPath::Avx512 ? &block_rows_avx2<true> : &block_rows_avx2<false>;
    return path == CpuPath::Avx512 ? &block_avx2<true> : &block_avx2<false>;
}

}  // namespace lcx::cpu
