// AVX-512 VNNI prompt products: the AVX2 path's interleaved weight panels and activation
// tiles (gemm_panel.h, gemm_avx2.cpp), multiplied with vpdpbusd.
//
// Two 8-row panels side by side fill one 512-bit register: for each 4-weight group, 16
// rows x 4 bytes. The pair's quants are first interleaved into 64-byte lines, so the tile
// loads a group in one instruction instead of two loads and an insert (Q4_K prompts
// 10-15% faster, Q8_0 8%). A tile row's 4 activation bytes are broadcast to the 16 lanes, and one
// vpdpbusd adds the 4 products of every row to its 32-bit lane: 64 products and the
// accumulation in one instruction, where AVX2 needs vpmaddubsw + vpaddw for 32 and a
// widening every few groups. Signed weights (Q8_0, IQ4_NL) are read as w + 128 (w xor
// 0x80), and 128 times the activations' integer block sum is subtracted, as Q4_0 and Q5_0
// subtract their offset. IQ4_XS, whose 8-bit activations (Q8_K) come without integer
// sums per 32, multiplies |w| by the activations negated where w < 0 (Q8_K quants are at
// least -127, so every negation is representable).
//
// The integer sums are exact, and the float steps are the AVX2 tile's, in the same order,
// so every output has the bits the AVX2 panels give (tests compare them).
#include "backend/cpu/gemm_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backend/cpu/gemm_panel.h"
#include "backend/cpu/tile_rows.h"

namespace lcx::cpu {

namespace {

// The 32 bytes at p0 (panel 0) and at p1 (the same place in panel 1) as one register; with
// one panel (the last 8 or fewer rows of a range) the upper half is zero.
template <int P>
inline __m512i join(const uint8_t* p0, const uint8_t* p1) {
    const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(p0));
    if constexpr (P == 1)
        return _mm512_zextsi256_si512(lo);
    else
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                  _mm256_load_si256(reinterpret_cast<const __m256i*>(p1)), 1);
}

template <int P>
inline __m512 join_ps(const float* p0, const float* p1) {
    const __m256 lo = _mm256_loadu_ps(p0);
    if constexpr (P == 1)
        return _mm512_zextps256_ps512(lo);
    else
        return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                                                   _mm256_castps_pd(_mm256_loadu_ps(p1)), 1));
}

// The 32 bytes at offset off of a panel pair's qs or sg: from the pair's interleaved copy
// (P == 2), whose 64-byte lines hold panel 0's 32 bytes and then panel 1's, in one load;
// or panel 0's alone.
template <int P>
inline __m512i pair_load(const uint8_t* pair, const uint8_t* p0, int64_t off) {
    if constexpr (P == 1)
        return _mm512_zextsi256_si512(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(p0 + off)));
    else
        return _mm512_load_si512(pair + 2 * off);
}

// Interleaves n 32-byte units of a and b into out: a's unit u, then b's, per 64 bytes.
inline void interleave32(const uint8_t* a, const uint8_t* b, int64_t n, uint8_t* out) {
    for (int64_t u = 0; u < n; ++u) {
        const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(a + 32 * u));
        const __m256i z = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32 * u));
        _mm512_store_si512(out + 64 * u, _mm512_inserti64x4(_mm512_castsi256_si512(x), z, 1));
    }
}

inline __m512i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// The int16 scales of a panel pair's half block (gemm_panel.h: each twice per 32-bit
// lane) as int32.
template <int P>
inline __m512i scales32(const PanelView* pv, int64_t half) {
    return _mm512_srai_epi32(join<P>(pv[0].sc + half * 32, pv[P - 1].sc + half * 32), 16);
}

// Q groups of P panels (8P weight rows each; Q > 1 only for pairs) x NT activation tiles
// of C rows each (tile u at xt + u C K): the AVX2 tile's sums and float steps. A chain of
// vpdpbusd waits ~4-5 cycles per step, and two can issue per cycle: 8 chains or more in
// flight (rows x groups x chains) keep it busy. The tile is bound by loads (one broadcast
// per activation row and group, one weight load per group and pair), so two pairs
// against 4 rows (6 loads per 8 vpdpbusd) beat one pair against 8 (9 loads).
// The K-quants' super-block sums need more registers and take one chain per row.
// pq/psg: the pairs' interleaved quants (pair_bytes apart); y columns n + 16q for pair q,
// nr rows in all.
template <DType kT, int P, int C, int NT, int Q = 1>
void vnni_tile(const PanelView* pv, const uint8_t* pq, const uint8_t* psg, int64_t pair_bytes,
               const ActRows& a, const int8_t* xt, int64_t c0, float* y, size_t ys, int64_t n,
               int nr) {
    static_assert(Q == 1 || P == 2);
    constexpr PanelTraits T = panel_traits(kT);
    // Signed weights: w + 128 against the integer block sums (Q8_0 activations), or |w|
    // against sign-adjusted activations (Q8_K, which has no such sums).
    constexpr bool kNegate = T.is_signed && T.super;
    constexpr int R = C * NT;               // activation rows
    constexpr int kStep = T.super ? 8 : 1;  // blocks per float step
    constexpr int kMins = T.min == PanelMin::Per16 ? 2 : T.min == PanelMin::Per32 ? 1 : 0;
    constexpr int kChains = T.super ? 1 : 2;
    // 2^shift times the activations' integer block sum comes off the block's sum.
    constexpr int kShift = T.is_signed && !kNegate ? 7 : T.offset_shift;
    // Group g of block b of row r (see act_tiles_avx2).
    const int64_t k = a.k;
    auto xg = [xt, k](int64_t b, int g, int r) {
        return xt + (r / C) * C * k + ((b * 8 + g) * C + r % C) * 4;
    };
    const PanelView* pp[Q];  // pair q's first panel
    const uint8_t* qq[Q];
    const uint8_t* sq[Q];
    for (int q = 0; q < Q; ++q) {
        pp[q] = pv + P * q;
        qq[q] = pq + q * pair_bytes;  // (P == 1: nullptr + 0, unread)
        sq[q] = psg + q * pair_bytes;
    }
    const int64_t nb = pv[0].nb;
    const float* dx[R];
    const float* sx[R];
    const int32_t* xs[R];
    for (int r = 0; r < R; ++r) {
        dx[r] = a.d_row(c0 + r);
        sx[r] = T.min == PanelMin::Per16 ? a.s16_row(c0 + r) : a.s32_row(c0 + r);
        xs[r] = kShift ? a.xs_row(c0 + r) : nullptr;
    }
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    __m512 acc[Q][R];
    __m512i sum[Q][T.super ? R : 1];  // the super-block's sum so far
    for (int q = 0; q < Q; ++q) {
        for (int r = 0; r < R; ++r) acc[q][r] = _mm512_setzero_ps();
        for (__m512i& v : sum[q]) v = _mm512_setzero_si512();
    }
    for (int64_t b = 0; b < nb; ++b) {
        __m512i s[Q][R];
        if constexpr (T.scale16) {
            // Two halves of 4 groups, each times its int16 scale.
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                __m512i t[Q][R];
                for (int q = 0; q < Q; ++q)
                    for (int r = 0; r < R; ++r) t[q][r] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int g = 4 * h; g < 4 * h + 4; ++g) {
                    __m512i w[Q];
                    for (int q = 0; q < Q; ++q)
                        w[q] = pair_load<P>(qq[q], pp[q]->qs, (8 * b + g) * 32);
                    for (int r = 0; r < R; ++r) {
                        const __m512i x = bcast4(xg(b, g, r));
                        for (int q = 0; q < Q; ++q) t[q][r] = _mm512_dpbusd_epi32(t[q][r], w[q], x);
                    }
                }
                for (int q = 0; q < Q; ++q) {
                    const __m512i sc = scales32<P>(pp[q], 2 * b + h);
                    for (int r = 0; r < R; ++r) {
                        const __m512i v = _mm512_mullo_epi32(t[q][r], sc);
                        s[q][r] = h ? _mm512_add_epi32(s[q][r], v) : v;
                    }
                }
            }
        } else {
            // Chain 0 starts from the offset's term, 2^shift times the activations'
            // integer block sum, negated (integer sums: the same result as subtracting it
            // at the end, one instruction fewer per row).
            __m512i ch[kChains][Q][R];
            for (int r = 0; r < R; ++r) {
                const __m512i init = kShift > 0 ? _mm512_set1_epi32(-xs[r][b] * (1 << kShift))
                                                : _mm512_setzero_si512();
                for (int q = 0; q < Q; ++q) {
                    ch[0][q][r] = init;
                    for (int i = 1; i < kChains; ++i) ch[i][q][r] = _mm512_setzero_si512();
                }
            }
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                const int64_t off = (8 * b + g) * 32;
                __m512i w[Q];
                __mmask64 neg[Q];
                for (int q = 0; q < Q; ++q) {
                    if constexpr (kNegate) {
                        w[q] = pair_load<P>(qq[q], pp[q]->qs, off);  // |w|
                        neg[q] = _mm512_movepi8_mask(pair_load<P>(sq[q], pp[q]->sg, off));
                    } else if constexpr (T.is_signed) {
                        w[q] = _mm512_xor_si512(pair_load<P>(sq[q], pp[q]->sg, off), flip);
                    } else {
                        w[q] = pair_load<P>(qq[q], pp[q]->qs, off);
                    }
                }
                for (int r = 0; r < R; ++r) {
                    const __m512i x = bcast4(xg(b, g, r));
                    for (int q = 0; q < Q; ++q) {
                        __m512i& c = ch[g % kChains][q][r];
                        if constexpr (kNegate)
                            c = _mm512_dpbusd_epi32(
                                c, w[q],
                                _mm512_mask_sub_epi8(x, neg[q], _mm512_setzero_si512(), x));
                        else
                            c = _mm512_dpbusd_epi32(c, w[q], x);
                    }
                }
            }
            for (int q = 0; q < Q; ++q) {
                for (int r = 0; r < R; ++r)
                    s[q][r] = kChains == 2 ? _mm512_add_epi32(ch[0][q][r], ch[kChains - 1][q][r])
                                           : ch[0][q][r];
                if constexpr (T.super) {
                    const __m512i sc = scales32<P>(pp[q], 2 * b);
                    for (int r = 0; r < R; ++r) s[q][r] = _mm512_mullo_epi32(s[q][r], sc);
                }
            }
        }
        if constexpr (T.super) {
            for (int q = 0; q < Q; ++q)
                for (int r = 0; r < R; ++r) {
                    sum[q][r] = b % kStep ? _mm512_add_epi32(sum[q][r], s[q][r]) : s[q][r];
                    s[q][r] = sum[q][r];
                }
            if (b % kStep != kStep - 1) continue;
        }
        // The float step, then the mins of the blocks it covers.
        for (int q = 0; q < Q; ++q) {
            const PanelView& p0 = pp[q][0];
            const PanelView& p1 = pp[q][P - 1];
            const __m512 ws = join_ps<P>(p0.ws + 8 * b, p1.ws + 8 * b);
            for (int r = 0; r < R; ++r)
                acc[q][r] = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(s[q][r]),
                    _mm512_mul_ps(ws, _mm512_set1_ps(dx[r][b >> T.dx_shift])), acc[q][r]);
            for (int64_t j = (b + 1 - kStep) * kMins; j < (b + 1) * kMins; ++j) {
                const __m512 wm = join_ps<P>(p0.wm + 8 * j, p1.wm + 8 * j);
                for (int r = 0; r < R; ++r)
                    acc[q][r] = _mm512_fmadd_ps(wm, _mm512_set1_ps(sx[r][j]), acc[q][r]);
            }
        }
    }
    for (int q = 0; q < Q; ++q) {
        const int rows = std::min(8 * P, nr - 16 * q);
        for (int r = 0; r < R; ++r) {
            // A masked store: the rows of a short panel only (a memcpy of a variable
            // length here was a library call per row, 1-2% of an F16 prompt).
            _mm512_mask_storeu_ps(y + size_t(c0 + r) * ys + size_t(n + 16 * q),
                                  __mmask16((1u << rows) - 1), acc[q][r]);
        }
    }
}

// Activation rows [c0, c1) (c0 on a tile) against np panels: two whole tiles at a time,
// then one, then the last tile of 1-3 rows, each against every pair of panels in turn
// while its activations are in L1. (Against one pair per pass over the activations, a
// prompt's tiles, 512 rows x K bytes, came from L3 once per 16 weight rows.)
template <DType kT>
void vnni_rows(const PanelView* pv, int np, const ActRows& a, int64_t c0, int64_t c1, float* y,
               size_t ys, int64_t n, int nr) {
    static_assert(kActTile == 4);
    constexpr PanelTraits T = panel_traits(kT);
    // Two pairs of panels against 4 activation rows, where one pair against 8 rows had
    // 9 loads per 8 vpdpbusd (pp512 +11-16% for Q4_0 and Q8_0). Not for the super-block
    // types: their sums need 8 more registers, and the K-quants measured 8% slower.
    constexpr bool kPairsOfPairs = !T.super;
    const int8_t* xq = a.qt.data();
    // Each pair's quants interleaved, so a tile reads a group of 16 rows in one load.
    const int64_t units = pv[0].nb * 8, pair_bytes = units * 64;
    struct alignas(64) Line {
        uint8_t b[64];
    };
    thread_local std::vector<Line> buf;
    const size_t need = size_t(np / 2) * size_t(pair_bytes) * (T.is_signed ? 2 : 1) / 64;
    if (buf.size() < need) buf.resize(need);
    auto* const pq = reinterpret_cast<uint8_t*>(buf.data());
    uint8_t* const psg = pq + (np / 2) * pair_bytes;
    for (int i = 0; i + 1 < np; i += 2) {
        interleave32(pv[i].qs, pv[i + 1].qs, units, pq + (i / 2) * pair_bytes);
        if constexpr (T.is_signed)
            interleave32(pv[i].sg, pv[i + 1].sg, units, psg + (i / 2) * pair_bytes);
    }
    // Tile (NT tiles of C rows at activation row c) against the panels: two pairs at a
    // time, then a pair, then a single panel.
    auto pairs = [&](auto nt, auto rows, int64_t c) {
        const int8_t* xt = xq + c * a.k;
        int i = 0;
        if constexpr (kPairsOfPairs)
            for (; np - i >= 4; i += 4)
                vnni_tile<kT, 2, rows(), nt(), 2>(pv + i, pq + (i / 2) * pair_bytes,
                                                  psg + (i / 2) * pair_bytes, pair_bytes, a, xt, c,
                                                  y, ys, n + 8 * i, std::min(32, nr - 8 * i));
        for (; np - i >= 2; i += 2)
            vnni_tile<kT, 2, rows(), nt()>(pv + i, pq + (i / 2) * pair_bytes,
                                           psg + (i / 2) * pair_bytes, pair_bytes, a, xt, c, y, ys,
                                           n + 8 * i, std::min(16, nr - 8 * i));
        if (i < np)
            vnni_tile<kT, 1, rows(), nt()>(pv + i, nullptr, nullptr, 0, a, xt, c, y, ys, n + 8 * i,
                                           nr - 8 * i);
    };
    using Four = std::integral_constant<int, kActTile>;
    using One = std::integral_constant<int, 1>;
    int64_t c = c0;
    if constexpr (!kPairsOfPairs)
        for (; c + 2 * kActTile <= c1; c += 2 * kActTile)
            pairs(std::integral_constant<int, 2>(), Four(), c);
    for (; c + kActTile <= c1; c += kActTile) pairs(One(), Four(), c);
    with_rows<kActTile - 1>(int(c1 - c), [&](auto rows) { pairs(One(), rows, c); });
}

// Weights of type kT, stored in layout kW: the file's, or kT's packed layout (quant/repack.h),
// whose panels are built from the packed rows and read the same way.
template <DType kT, DType kW = kT>
void vnni_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    panel_matmul_with(kW, vnni_rows<kT>, w, n0, n1, a, y, ys);
}

}  // namespace

MatmulFn gemm_avx512(DType t) {
    switch (t) {
        case DType::Q4_0:
            return vnni_matmul<DType::Q4_0>;
        case DType::Q4_1:
            return vnni_matmul<DType::Q4_1>;
        case DType::Q5_0:
            return vnni_matmul<DType::Q5_0>;
        case DType::Q5_1:
            return vnni_matmul<DType::Q5_1>;
        case DType::Q8_0:
            return vnni_matmul<DType::Q8_0>;
        case DType::IQ4_NL:
            return vnni_matmul<DType::IQ4_NL>;
        case DType::Q2_K:
            return vnni_matmul<DType::Q2_K>;
        case DType::Q3_K:
            return vnni_matmul<DType::Q3_K>;
        case DType::Q4_K:
            return vnni_matmul<DType::Q4_K>;
        case DType::Q5_K:
            return vnni_matmul<DType::Q5_K>;
        case DType::Q6_K:
            return vnni_matmul<DType::Q6_K>;
        case DType::IQ4_XS:
            return vnni_matmul<DType::IQ4_XS>;
        case DType::Q4_0_R8:
            return vnni_matmul<DType::Q4_0, DType::Q4_0_R8>;
        case DType::Q8_0_R8:
            return vnni_matmul<DType::Q8_0, DType::Q8_0_R8>;
        case DType::Q4_K_R8:
            return vnni_matmul<DType::Q4_K, DType::Q4_K_R8>;
        case DType::Q5_K_R8:
            return vnni_matmul<DType::Q5_K, DType::Q5_K_R8>;
        default:
            return nullptr;
    }
}

}  // namespace lcx::cpu
