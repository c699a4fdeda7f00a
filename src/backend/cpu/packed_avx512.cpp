// AVX-512 VNNI decode kernels of the packed layouts Q4_0_R8, Q8_0_R8 and Q4_K_R8
// (quant/repack.h): a group of 8 weight rows against up to 3 activation rows.
//
// A packed vector holds one 4-weight group of each of the 8 rows (32 bytes). Two groups side
// by side fill a 512-bit register, rows in lanes 0-7 and again in 8-15, and one vpdpbusd
// against the two groups' activation bytes (permuted into the matching halves) adds their
// 64 products into 32-bit sums; folding the halves gives each row's sum. The AVX2 kernels
// need vpmaddubsw, a 16-bit add and a widening for half as many products. The integer sums
// are exact and the float steps are the AVX2 kernels', in the same order, so every output
// has their bits (and the panels', tests compare them).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backend/cpu/gemm_avx512.h"
#include "backend/cpu/packed_rows.h"
#include "quant/repack.h"

namespace lcx::cpu {

namespace {

// Prefetch distance and hint of the AVX2 packed kernels (matmul_avx2.cpp): weights are
// streamed once per step.
constexpr int kPrefetch = 4096;
inline void prefetch_ahead(const void* p, int bytes) {
    const char* c = static_cast<const char*>(p) + kPrefetch;
    for (int o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_NTA);
}

// Activation rows [c0, c0 + C)'s arrays (the integer block sums xs only of Q8_0
// activations, which the legacy formats take).
template <int C, bool kSums = false>
struct Act {
    const int8_t* q[C];
    const float* d[C];
    const float* s32[C];
    const int32_t* xs[C];
    Act(const ActRows& a, int64_t c0) {
        for (int c = 0; c < C; ++c) {
            q[c] = a.q_row(c0 + c);
            d[c] = a.d_row(c0 + c);
            s32[c] = a.s32_row(c0 + c);
            xs[c] = kSums ? a.xs_row(c0 + c) : nullptr;
        }
    }
};

// Activation groups g (lanes 0-7) and g + 1 (lanes 8-15) of the 32 bytes at x.
inline __m512i act_pair(__m256i x, int g) {
    const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(g), _mm256_set1_epi32(g + 1), 1);
    return _mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(x));
}

// The 8 rows' sums: lanes r and r + 8 added.
inline __m256i fold(__m512i s) {
    return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}

// acc[c] += float(s[c]) * (ws * d_x): the AVX2 kernels' float step.
template <int C, bool kSums>
inline void float_step(__m256 acc[C], const __m256i s[C], __m256 ws, const Act<C, kSums>& a,
                       int64_t i) {
    for (int c = 0; c < C; ++c)
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]),
                                 _mm256_mul_ps(ws, _mm256_broadcast_ss(a.d[c] + i)), acc[c]);
}

inline __m256 load_h8(const uint16_t* h) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

// The legacy packed formats (blocks of 32): F::pairs() gives a block's 8 groups as 4
// registers of two groups each, (0|1), (2|3), (4|5), (6|7), as unsigned bytes u = w +
// 2^F::kShift; the sums lose 2^kShift times the activations' integer block sum.
template <class F>
struct Legacy {
    using Block = typename F::Block;
    static constexpr int kBlockK = 32;
    template <int C>
    static void rows(const Block* x, const ActRows& ar, int64_t c0, float* y, size_t ys) {
        const int64_t nb = ar.k / 32;
        const Act<C, true> a(ar, c0);
        __m256 acc[C];
        for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            prefetch_ahead(x + b, int(sizeof(Block)));
            __m512i u[4];
            F::pairs(x[b], u);
            __m256i s[C] = {};  // all set below; {} keeps -Wmaybe-uninitialized quiet
            for (int c = 0; c < C; ++c) {
                const __m256i xq =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q[c] + 32 * b));
                __m512i t = _mm512_setzero_si512();
                for (int p = 0; p < 4; ++p) t = _mm512_dpbusd_epi32(t, u[p], act_pair(xq, 2 * p));
                s[c] = _mm256_sub_epi32(
                    fold(t), _mm256_slli_epi32(_mm256_set1_epi32(a.xs[c][b]), F::kShift));
            }
            float_step(acc, s, load_h8(x[b].d), a, b);
        }
        for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + size_t(c0 + c) * ys, acc[c]);
    }
};

// Q4_0_R8: vector v's low nibbles are group v, its high nibbles group v + 4; q = w + 8.
struct Q4_0Pairs {
    using Block = BlockQ4_0x8;
    static constexpr int kShift = 3;
    static void pairs(const Block& x, __m512i u[4]) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        const __m512i z0 = _mm512_loadu_si512(x.qs[0]), z1 = _mm512_loadu_si512(x.qs[2]);
        u[0] = _mm512_and_si512(z0, m4);
        u[1] = _mm512_and_si512(z1, m4);
        u[2] = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
        u[3] = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
    }
};

// Q8_0_R8: signed weights read as w + 128 (w xor 0x80).
struct Q8_0Pairs {
    using Block = BlockQ8_0x8;
    static constexpr int kShift = 7;
    static void pairs(const Block& x, __m512i u[4]) {
        const __m512i flip = _mm512_set1_epi8(char(0x80));
        for (int p = 0; p < 4; ++p) u[p] = _mm512_xor_si512(_mm512_loadu_si512(x.qs[2 * p]), flip);
    }
};

// A Q4_K_R8 group's 6-bit scales and mins (quant/repack.h) as bytes, in registers.
// v[h]'s 128-bit lanes 0-1 hold the scales of sub-blocks 4h..4h+3, lanes 2-3 their mins:
// the low nibbles of scales_lo and mins_lo (adjacent, one load) are scales and mins 0..31,
// the high nibbles 32..63, and each takes its top bits from `high` shifted into bits 4-5.
// (Unpacked to memory and reloaded 8 bytes at a time, the reloads missed store forwarding
// and the kernel ran at half its rate; widening first and unpacking in 32-bit lanes was
// 5-10% slower than this.)
struct Q4_KScales {
    __m512i v[2];
    explicit Q4_KScales(const BlockQ4_Kx8& b) {
        const __m512i lo = _mm512_loadu_si512(b.scales_lo);
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)b.high));
        const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
        // Scales then mins: scales' top bits sit 4 (first half) and 2 (second half) bits
        // lower than the mins'.
        const __m512i top0 = _mm512_mask_blend_epi64(0xF0, _mm512_slli_epi16(h, 4), h);
        const __m512i top1 =
            _mm512_mask_blend_epi64(0xF0, _mm512_slli_epi16(h, 2), _mm512_srli_epi16(h, 2));
        v[0] = _mm512_or_si512(_mm512_and_si512(lo, m4), _mm512_and_si512(top0, m30));
        v[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lo, 4), m4),
                               _mm512_and_si512(top1, m30));
    }
    // Sub-blocks 2p and 2p + 1's scales (with `mins`, their mins) as 16 int32, 8 rows each.
    __m512i pair(int p, bool mins) const {
        const __m512i q = v[p / 2];
        __m128i l;
        switch (p % 2 + 2 * mins) {
            case 0:
                l = _mm512_castsi512_si128(q);
                break;
            case 1:
                l = _mm512_extracti32x4_epi32(q, 1);
                break;
            case 2:
                l = _mm512_extracti32x4_epi32(q, 2);
                break;
            default:
                l = _mm512_extracti32x4_epi32(q, 3);
                break;
        }
        return _mm512_cvtepu8_epi32(l);
    }
};

// Q5_K_R8 (quant/repack.h): the fifth bits of groups g and g + 1 of pair p (g even: both
// in half g / 4 of the pair's qh), added as 16 to the low (ul) and high (uh) nibbles of
// the register holding the two groups. Group g's low-nibble bit sits at bit 2 (g % 4) of
// its qh byte, its high-nibble bit one above, and group g + 1's two above those: each
// half of the register shifts its copy of qh to put them at bit 4.
inline void add_fifth_bits(const BlockQ5_Kx8& b, int p, int g, __m512i& ul, __m512i& uh) {
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh[p][g / 4])));
    __m512i l, h;
    if (g % 4 == 0) {  // groups 0 and 1 of the half: bits 0, 1 and 2, 3
        l = _mm512_mask_blend_epi64(0xF0, _mm512_slli_epi16(qh, 4), _mm512_slli_epi16(qh, 2));
        h = _mm512_mask_blend_epi64(0xF0, _mm512_slli_epi16(qh, 3), _mm512_slli_epi16(qh, 1));
    } else {  // groups 2 and 3: bits 4, 5 and 6, 7
        l = _mm512_mask_blend_epi64(0xF0, qh, _mm512_srli_epi16(qh, 2));
        h = _mm512_mask_blend_epi64(0xF0, _mm512_srli_epi16(qh, 1), _mm512_srli_epi16(qh, 3));
    }
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    ul = _mm512_or_si512(ul, _mm512_and_si512(l, bit4));
    uh = _mm512_or_si512(uh, _mm512_and_si512(h, bit4));
}

// Q4_K_R8 and Q5_K_R8 (Blk): per pair p of sub-blocks, qs[p][g]'s low nibbles are group g
// of sub-block 2p, its high nibbles group g of 2p + 1 (Q5_K_R8 adds each weight's fifth bit
// as 16 first). Each sub-block's integer sum times its 6-bit scale, summed over the
// super-block in int32, then one float step with d and the 8 mins in float, as the AVX2
// kernel does.
template <class Blk>
struct K45R8 {
    using Block = Blk;
    static constexpr int kBlockK = 256;
    template <int C>
    static void rows(const Block* x, const ActRows& ar, int64_t c0, float* y, size_t ys) {
        const int64_t nsb = ar.k / 256;
        const Act<C> a(ar, c0);
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        const __m256 sign = _mm256_set1_ps(-0.0f);
        __m256 acc[C];
        for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const Block& blk = x[sb];
            prefetch_ahead(&blk, int(sizeof(Block)));
            const Q4_KScales ks(blk);
            __m256i s[C] = {};  // all set below; {} keeps -Wmaybe-uninitialized quiet
            for (int p = 0; p < 4; ++p) {
                __m512i lo[C], hi[C];
                for (int c = 0; c < C; ++c) lo[c] = hi[c] = _mm512_setzero_si512();
                for (int g = 0; g < 8; g += 2) {
                    const __m512i raw = _mm512_loadu_si512(blk.qs[p][g]);
                    __m512i ul = _mm512_and_si512(raw, m4);
                    __m512i uh = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                    if constexpr (std::is_same_v<Blk, BlockQ5_Kx8>)
                        add_fifth_bits(blk, p, g, ul, uh);
                    for (int c = 0; c < C; ++c) {
                        const int8_t* q = a.q[c] + 256 * sb + 64 * p;
                        const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
                        const __m256i xh =
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
                        lo[c] = _mm512_dpbusd_epi32(lo[c], ul, act_pair(xl, g));
                        hi[c] = _mm512_dpbusd_epi32(hi[c], uh, act_pair(xh, g));
                    }
                }
                const __m512i sp = ks.pair(p, false);
                const __m256i sl = _mm512_castsi512_si256(sp);
                const __m256i sh = _mm512_extracti64x4_epi64(sp, 1);
                for (int c = 0; c < C; ++c) {
                    const __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(fold(lo[c]), sl),
                                                       _mm256_mullo_epi32(fold(hi[c]), sh));
                    s[c] = p ? _mm256_add_epi32(s[c], t) : t;
                }
            }
            float_step(acc, s, load_h8(blk.d), a, sb);
            const __m256 negdm = _mm256_xor_ps(load_h8(blk.dmin), sign);
            for (int jp = 0; jp < 4; ++jp) {
                const __m512 mins = _mm512_cvtepi32_ps(ks.pair(jp, true));
                for (int h = 0; h < 2; ++h) {
                    const int j = 2 * jp + h;
                    const __m256 mn =
                        h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mins), 1))
                          : _mm512_castps512_ps256(mins);
                    const __m256 wm = _mm256_mul_ps(negdm, mn);
                    for (int c = 0; c < C; ++c)
                        acc[c] =
                            _mm256_fmadd_ps(wm, _mm256_broadcast_ss(a.s32[c] + 8 * sb + j), acc[c]);
                }
            }
        }
        for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + size_t(c0 + c) * ys, acc[c]);
    }
};

}  // namespace

MatmulFn packed_vec_avx512(DType packed) {
    switch (packed) {
        case DType::Q4_0_R8:
            return packed_vec<Legacy<Q4_0Pairs>>;
        case DType::Q8_0_R8:
            return packed_vec<Legacy<Q8_0Pairs>>;
        case DType::Q4_K_R8:
            return packed_vec<K45R8<BlockQ4_Kx8>>;
        case DType::Q5_K_R8:
            return packed_vec<K45R8<BlockQ5_Kx8>>;
        default:
            return nullptr;
    }
}

}  // namespace lcx::cpu
