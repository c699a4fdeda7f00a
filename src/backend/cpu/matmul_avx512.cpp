// AVX-512 (F/BW/VL/DQ + VNNI) matrix products for every weight type.
//
// Quantized weights: each group of 256 weights (one K-quant super-block, or 8 blocks of 32
// of the legacy formats) is unpacked once into 4 registers of *unsigned* bytes u, with
//     w = scale_g * u + min_g        (scale per 16 or 32 weights, min likewise),
// and then used against up to 8 activation rows: vpdpbusd(u, q_x) gives 4-product sums per
// 32-bit lane, which are converted to float and multiplied by the lane's scale. The min
// part needs only the activation's per-group sums (d_x * sum q_x, precomputed once per
// activation), so signed weights (Q8_0, IQ4) are made unsigned by adding 128 and the
// offsets of Q4_0 (-8), Q6_K (-32), Q3_K (-4) become "mins". This is the unsigned-offset
// trick: one VNNI instruction per 64 byte products.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/gemm_avx2.h"
#include "backend/cpu/gemm_avx512.h"
#include "backend/cpu/gemm_panel.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/panel_buffer.h"
#include "backend/cpu/tile_rows.h"
#include "common/fp16.h"
#include "quant/blocks.h"

namespace lcx::cpu {

namespace {

inline float h2f(uint16_t h) { return fp16_to_fp32(h); }

// Index vectors that spread 8 per-32 scales (or 16 per-16 scales) over the 16 lanes of the
// k-th register of 64 weights.
inline __m512i idx32(int k) {
    return _mm512_set_epi32(2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1,
                            2 * k + 1, 2 * k + 1, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k,
                            2 * k);
}
inline __m512i idx16(int k) {
    const int b = 4 * k;
    return _mm512_set_epi32(b + 3, b + 3, b + 3, b + 3, b + 2, b + 2, b + 2, b + 2, b + 1, b + 1,
                            b + 1, b + 1, b, b, b, b);
}

// 32 packed nibble bytes (two blocks' 16 bytes: a then b) -> 64 bytes in element order
// [a low, a high, b low, b high].
inline __m512i nibbles_2x16(const uint8_t* a, const uint8_t* b) {
    const __m256i ab =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)a)),
                                _mm_loadu_si128((const __m128i*)b), 1);
    const __m512i z = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0),
                                               _mm512_zextsi256_si512(ab));
    const __m512i sh = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0,
                                        0x0004000400040004, 0x0004000400040004, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(0x0F));
}

// 32 nibble bytes where byte l holds element l (low) and l + 32 (high): K-quant layout.
inline __m512i nibbles_32(const uint8_t* p) {
    const __m256i v = _mm256_loadu_si256((const __m256i*)p);
    const __m512i z = _mm512_inserti64x4(_mm512_zextsi256_si512(v), v, 1);
    const __m512i sh = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                        0x0004000400040004, 0, 0, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(0x0F));
}

inline __m512i iq4_table() {
    alignas(16) uint8_t t[16];
    for (int i = 0; i < 16; ++i) t[i] = uint8_t(kvalues_iq4nl[i] + 128);
    return _mm512_broadcast_i32x4(_mm_load_si128((const __m128i*)t));
}

inline __m256 load_h8(const uint8_t* base, size_t stride) {
    uint16_t h[8];
    for (int i = 0; i < 8; ++i) std::memcpy(&h[i], base + size_t(i) * stride, 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)h));
}

// Decode streams each weight row once, from memory; the rows lie one after another, so the
// bytes kPrefetch ahead of a step are the same row's or the next rows'. Non-temporal, as
// the AVX2 path's (math_avx2.h, which this file does not include: its inline functions
// compiled here for AVX-512 could be the copy the linker keeps for the AVX2 files).
constexpr int kPrefetch = 4096;
inline void prefetch_ahead(const void* p, int ahead, int bytes) {
    const char* c = static_cast<const char*>(p) + ahead;
    for (int o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_NTA);
}

// ---- legacy formats: 8 blocks of 32 per step ---------------------------------------------
// unpack8: u[4] (unsigned weights), dw (scale per block), mw (min per block).
// unpack1 (tails): one block into 32 unsigned bytes.

struct LQ4_0 {
    using B = BlockQ4_0;
    static void unpack8(const B* x, __m512i u[4], __m256& dw, __m256& mw) {
        for (int k = 0; k < 4; ++k) u[k] = nibbles_2x16(x[2 * k].qs, x[2 * k + 1].qs);
        dw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].d), sizeof(B));
        mw = _mm256_mul_ps(dw, _mm256_set1_ps(-8.0f));
    }
    static void unpack1(const B* x, uint8_t u[32], float& dw, float& mw) {
        for (int j = 0; j < 16; ++j) u[j] = x->qs[j] & 15, u[j + 16] = x->qs[j] >> 4;
        dw = h2f(x->d);
        mw = -8.0f * dw;
    }
};
struct LQ4_1 {
    using B = BlockQ4_1;
    static void unpack8(const B* x, __m512i u[4], __m256& dw, __m256& mw) {
        for (int k = 0; k < 4; ++k) u[k] = nibbles_2x16(x[2 * k].qs, x[2 * k + 1].qs);
        dw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].d), sizeof(B));
        mw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].m), sizeof(B));
    }
    static void unpack1(const B* x, uint8_t u[32], float& dw, float& mw) {
        for (int j = 0; j < 16; ++j) u[j] = x->qs[j] & 15, u[j + 16] = x->qs[j] >> 4;
        dw = h2f(x->d);
        mw = h2f(x->m);
    }
};
template <class B>
inline __mmask64 qh_mask2(const B* a, const B* b) {
    uint32_t ha, hb;
    std::memcpy(&ha, a->qh, 4);
    std::memcpy(&hb, b->qh, 4);
    return __mmask64(ha) | (__mmask64(hb) << 32);
}
template <class B>
inline void q5_unpack1(const B* x, uint8_t u[32]) {
    uint32_t qh;
    std::memcpy(&qh, x->qh, 4);
    for (int j = 0; j < 16; ++j) {
        u[j] = uint8_t((x->qs[j] & 15) | (((qh >> j) & 1) << 4));
        u[j + 16] = uint8_t((x->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
}
struct LQ5_0 {
    using B = BlockQ5_0;
    static void unpack8(const B* x, __m512i u[4], __m256& dw, __m256& mw) {
        const __m512i sixteen = _mm512_set1_epi8(16);
        for (int k = 0; k < 4; ++k) {
            u[k] = nibbles_2x16(x[2 * k].qs, x[2 * k + 1].qs);
            u[k] = _mm512_mask_add_epi8(u[k], qh_mask2(&x[2 * k], &x[2 * k + 1]), u[k], sixteen);
        }
        dw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].d), sizeof(B));
        mw = _mm256_mul_ps(dw, _mm256_set1_ps(-16.0f));
    }
    static void unpack1(const B* x, uint8_t u[32], float& dw, float& mw) {
        q5_unpack1(x, u);
        dw = h2f(x->d);
        mw = -16.0f * dw;
    }
};
struct LQ5_1 {
    using B = BlockQ5_1;
    static void unpack8(const B* x, __m512i u[4], __m256& dw, __m256& mw) {
        const __m512i sixteen = _mm512_set1_epi8(16);
        for (int k = 0; k < 4; ++k) {
            u[k] = nibbles_2x16(x[2 * k].qs, x[2 * k + 1].qs);
            u[k] = _mm512_mask_add_epi8(u[k], qh_mask2(&x[2 * k], &x[2 * k + 1]), u[k], sixteen);
        }
        dw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].d), sizeof(B));
        mw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].m), sizeof(B));
    }
    static void unpack1(const B* x, uint8_t u[32], float& dw, float& mw) {
        q5_unpack1(x, u);
        dw = h2f(x->d);
        mw = h2f(x->m);
    }
};
struct LQ8_0 {
    using B = BlockQ8_0;
    static void unpack8(const B* x, __m512i u[4], __m256& dw, __m256& mw) {
        const __m512i flip = _mm512_set1_epi8(char(0x80));
        for (int k = 0; k < 4; ++k) {
            const __m512i v = _mm512_inserti64x4(
                _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i*)x[2 * k].qs)),
                _mm256_loadu_si256((const __m256i*)x[2 * k + 1].qs), 1);
            u[k] = _mm512_xor_si512(v, flip);
        }
        dw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].d), sizeof(B));
        mw = _mm256_mul_ps(dw, _mm256_set1_ps(-128.0f));
    }
    static void unpack1(const B* x, uint8_t u[32], float& dw, float& mw) {
        for (int j = 0; j < 32; ++j) u[j] = uint8_t(x->qs[j] + 128);
        dw = h2f(x->d);
        mw = -128.0f * dw;
    }
};
struct LIQ4_NL {
    using B = BlockIQ4_NL;
    static void unpack8(const B* x, __m512i u[4], __m256& dw, __m256& mw) {
        const __m512i tbl = iq4_table();
        for (int k = 0; k < 4; ++k)
            u[k] = _mm512_shuffle_epi8(tbl, nibbles_2x16(x[2 * k].qs, x[2 * k + 1].qs));
        dw = load_h8(reinterpret_cast<const uint8_t*>(&x[0].d), sizeof(B));
        mw = _mm256_mul_ps(dw, _mm256_set1_ps(-128.0f));
    }
    static void unpack1(const B* x, uint8_t u[32], float& dw, float& mw) {
        for (int j = 0; j < 16; ++j) {
            u[j] = uint8_t(kvalues_iq4nl[x->qs[j] & 15] + 128);
            u[j + 16] = uint8_t(kvalues_iq4nl[x->qs[j] >> 4] + 128);
        }
        dw = h2f(x->d);
        mw = -128.0f * dw;
    }
};

// Rows [n0, n1) against activation rows [c0, c0 + C).
template <class L, int C>
void legacy_tile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
    using B = typename L::B;
    const int64_t nb = a.k / 32, ng = nb / 8;
    const B* x = reinterpret_cast<const B*>(w.row(n));
    __m512 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t g = 0; g < ng; ++g) {
        __m512i u[4];
        __m256 dw, mw;
        prefetch_ahead(x + g * 8, kPrefetch, 8 * int(sizeof(B)));
        L::unpack8(x + g * 8, u, dw, mw);
        const __m512 mwz = _mm512_zextps256_ps512(mw);
        for (int c = 0; c < C; ++c) {
            const int64_t cc = c0 + c;
            const int8_t* q = a.q_row(cc) + g * 256;
            const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(a.d_row(cc) + g * 8));
            const __m512 sz = _mm512_zextps256_ps512(s);
            __m512 t = acc[c];
            for (int k = 0; k < 4; ++k) {
                const __m512i p =
                    _mm512_dpbusd_epi32(zero, u[k], _mm512_loadu_si512((const void*)(q + 64 * k)));
                t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx32(k), sz), t);
            }
            const __m512 sx = _mm512_maskz_loadu_ps(0xFF, a.s32_row(cc) + g * 8);
            acc[c] = _mm512_fmadd_ps(mwz, sx, t);
        }
    }
    float tail[C] = {};
    for (int64_t b = ng * 8; b < nb; ++b) {
        uint8_t u[32];
        float dw, mw;
        L::unpack1(x + b, u, dw, mw);
        for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q_row(c0 + c) + b * 32;
            int s = 0;
            for (int j = 0; j < 32; ++j) s += int(u[j]) * int(q[j]);
            tail[c] += dw * a.d_row(c0 + c)[b] * float(s) + mw * a.s32_row(c0 + c)[b];
        }
    }
    for (int c = 0; c < C; ++c)
        y[size_t(c0 + c) * ys + size_t(n)] = _mm512_reduce_add_ps(acc[c]) + tail[c];
}

// ---- K formats: one 256-weight super-block per step ---------------------------------------
// unpack: u[4], ls[4] (per-lane scale without the activation's d), mins for 16 groups
// (kMin16, paired with the activation's s16) or 8 groups (paired with s32).

inline __m256 u8x8_to_ps(const uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}

struct KQ4 {
    using B = BlockQ4_K;
    static constexpr bool kMin16 = false;
    static void unpack(const B* x, __m512i u[4], __m512 ls[4], __m512& mw) {
        uint8_t sc[8], mn[8];
        get_scales_mins_k4(x->scales, sc, mn);
        const __m512 s =
            _mm512_zextps256_ps512(_mm256_mul_ps(u8x8_to_ps(sc), _mm256_set1_ps(h2f(x->d))));
        for (int k = 0; k < 4; ++k) {
            u[k] = nibbles_32(x->qs + 32 * k);
            ls[k] = _mm512_permutexvar_ps(idx32(k), s);
        }
        mw = _mm512_zextps256_ps512(_mm256_mul_ps(u8x8_to_ps(mn), _mm256_set1_ps(-h2f(x->dmin))));
    }
};
struct KQ5 {
    using B = BlockQ5_K;
    static constexpr bool kMin16 = false;
    static void unpack(const B* x, __m512i u[4], __m512 ls[4], __m512& mw) {
        uint8_t sc[8], mn[8];
        get_scales_mins_k4(x->scales, sc, mn);
        const __m512 s =
            _mm512_zextps256_ps512(_mm256_mul_ps(u8x8_to_ps(sc), _mm256_set1_ps(h2f(x->d))));
        const __m256i h = _mm256_loadu_si256((const __m256i*)x->qh);
        const __m512i qh = _mm512_inserti64x4(_mm512_zextsi256_si512(h), h, 1);
        const __m512i sixteen = _mm512_set1_epi8(16);
        for (int k = 0; k < 4; ++k) {
            // Element 64k + l takes bit 2k of qh[l], element 64k + 32 + l bit 2k + 1.
            const __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8(char(1 << (2 * k))),
                                                    _mm256_set1_epi8(char(1 << (2 * k + 1))), 1);
            u[k] = nibbles_32(x->qs + 32 * k);
            u[k] = _mm512_mask_add_epi8(u[k], _mm512_test_epi8_mask(qh, bits), u[k], sixteen);
            ls[k] = _mm512_permutexvar_ps(idx32(k), s);
        }
        mw = _mm512_zextps256_ps512(_mm256_mul_ps(u8x8_to_ps(mn), _mm256_set1_ps(-h2f(x->dmin))));
    }
};
struct KQ6 {
    using B = BlockQ6_K;
    static constexpr bool kMin16 = true;
    static void unpack(const B* x, __m512i u[4], __m512 ls[4], __m512& mw) {
        const __m512 s = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)x->scales))),
            _mm512_set1_ps(h2f(x->d)));
        const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = _mm512_loadu_si512((const void*)(x->ql + 64 * h));
            const __m256i hv = _mm256_loadu_si256((const __m256i*)(x->qh + 32 * h));
            const __m512i qh = _mm512_inserti64x4(_mm512_zextsi256_si512(hv), hv, 1);
            // High bits (2 per element) moved to bits 4-5: shift left 4 / 2, right 0 / 2.
            const __m512i ha = _mm512_sllv_epi16(
                qh, _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                     0x0002000200020002, 0x0004000400040004, 0x0004000400040004,
                                     0x0004000400040004, 0x0004000400040004));
            const __m512i hb = _mm512_srlv_epi16(
                qh, _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                     0x0002000200020002, 0, 0, 0, 0));
            u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(ha, m3));
            u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                           _mm512_and_si512(hb, m3));
        }
        for (int k = 0; k < 4; ++k) ls[k] = _mm512_permutexvar_ps(idx16(k), s);
        mw = _mm512_mul_ps(s, _mm512_set1_ps(-32.0f));
    }
};
// Q2_K / Q3_K: element 128h + 32j + l holds bits 2j..2j+1 of qs[32h + l].
inline __m512i q2_bits(const uint8_t* qs, int k) {
    const int h = k / 2, j0 = 2 * (k % 2);
    const __m256i v = _mm256_loadu_si256((const __m256i*)(qs + 32 * h));
    const __m512i z = _mm512_inserti64x4(_mm512_zextsi256_si512(v), v, 1);
    const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(short(2 * j0)),
                                          _mm256_set1_epi16(short(2 * j0 + 2)), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(3));
}
struct KQ2 {
    using B = BlockQ2_K;
    static constexpr bool kMin16 = true;
    static void unpack(const B* x, __m512i u[4], __m512 ls[4], __m512& mw) {
        const __m512i sv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)x->scales));
        const __m512 s =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(sv, _mm512_set1_epi32(15))),
                          _mm512_set1_ps(h2f(x->d)));
        for (int k = 0; k < 4; ++k) {
            u[k] = q2_bits(x->qs, k);
            ls[k] = _mm512_permutexvar_ps(idx16(k), s);
        }
        mw = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(sv, 4)),
                           _mm512_set1_ps(-h2f(x->dmin)));
    }
};
template <class U, int C>
void k_tile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
    using B = typename U::B;
    const int64_t nsb = a.k / 256;
    const B* x = reinterpret_cast<const B*>(w.row(n));
    __m512 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        __m512i u[4];
        __m512 ls[4], mw;
        prefetch_ahead(x + sb, kPrefetch, int(sizeof(B)));
        U::unpack(x + sb, u, ls, mw);
        for (int c = 0; c < C; ++c) {
            const int64_t cc = c0 + c;
            const int8_t* q = a.q_row(cc) + sb * 256;
            __m512 t = _mm512_setzero_ps();
            for (int k = 0; k < 4; ++k) {
                const __m512i p =
                    _mm512_dpbusd_epi32(zero, u[k], _mm512_loadu_si512((const void*)(q + 64 * k)));
                t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), ls[k], t);
            }
            const __m512 sx = U::kMin16 ? _mm512_loadu_ps(a.s16_row(cc) + sb * 16)
                                        : _mm512_maskz_loadu_ps(0xFF, a.s32_row(cc) + sb * 8);
            acc[c] = _mm512_fmadd_ps(t, _mm512_set1_ps(a.d_row(cc)[sb]), acc[c]);
            acc[c] = _mm512_fmadd_ps(mw, sx, acc[c]);
        }
    }
    for (int c = 0; c < C; ++c) y[size_t(c0 + c) * ys + size_t(n)] = _mm512_reduce_add_ps(acc[c]);
}

// Rows in blocks of 16 so that a block's weights stay in L2 while every column tile of the
// activations (up to 8 rows of K bytes, in L1) passes over them.
template <template <class, int> class Tile, class U>
void quant_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    for (int64_t nb = n0; nb < n1; nb += 16) {
        const int64_t ne = std::min(n1, nb + 16);
        for (int64_t c0 = 0; c0 < a.m; c0 += 8) {
            const int64_t cn = std::min<int64_t>(8, a.m - c0);
            for (int64_t n = nb; n < ne; ++n) {
                switch (cn) {
                    case 1:
                        Tile<U, 1>(w, n, a, c0, y, ys);
                        break;
                    case 2:
                        Tile<U, 2>(w, n, a, c0, y, ys);
                        break;
                    case 3:
                        Tile<U, 3>(w, n, a, c0, y, ys);
                        break;
                    case 4:
                        Tile<U, 4>(w, n, a, c0, y, ys);
                        break;
                    case 5:
                        Tile<U, 5>(w, n, a, c0, y, ys);
                        break;
                    case 6:
                        Tile<U, 6>(w, n, a, c0, y, ys);
                        break;
                    case 7:
                        Tile<U, 7>(w, n, a, c0, y, ys);
                        break;
                    default:
                        Tile<U, 8>(w, n, a, c0, y, ys);
                        break;
                }
            }
        }
    }
}

template <class L, int C>
struct LegacyTile {
    LegacyTile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
        legacy_tile<L, C>(w, n, a, c0, y, ys);
    }
};
template <class U, int C>
struct KTile {
    KTile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
        k_tile<U, C>(w, n, a, c0, y, ys);
    }
};

// ---- float formats: R rows x C columns register tile -------------------------------------
struct WF32 {
    using T = float;
    static __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct WF16 {
    using T = uint16_t;
    static __m512 load(const uint16_t* p, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    }
};
struct WBF16 {
    using T = uint16_t;
    static __m512 load(const uint16_t* p, __mmask16 m) {
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
    }
};

// Products of exactly representable bf16/f16 values: FMA in f32 equals ggml's conversion
// to f32 followed by multiply-add, up to the summation order.
template <class W, int R, int C>
void float_tile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
    const int64_t k = a.k;
    const typename W::T* wr[R];
    for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const typename W::T*>(w.row(n + r));
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    // The next R rows, which lie right after these (a weight's rows are contiguous), read
    // ahead as one sequential stream: R lines per 64 bytes of a row. A row of F16 at
    // K = 2048 is one 4 KiB page, and the hardware prefetcher does not cross pages, so
    // without a prefetch every row starts with a miss; prefetching the next rows at this
    // tile's offsets instead (R streams a page apart) decoded TinyLlama F16 at 16.2-19.7
    // t/s, this at 20.5-23.2 (6 interleaved rounds). (The AVX2 kernel keeps the R streams:
    // there the sequential form measured 9% slower, on the same Zen 5.)
    const char* const ahead =
        reinterpret_cast<const char*>(wr[0]) + size_t(R) * row_bytes(w.type(), k);
    for (int64_t j = 0; j < k; j += 16) {
        const __mmask16 m = k - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - j)) - 1);
        if (j % (64 / sizeof(typename W::T)) == 0)
            for (int r = 0; r < R; ++r)
                _mm_prefetch(ahead + size_t(j) * sizeof(typename W::T) * R + 64 * r, _MM_HINT_T0);
        __m512 xv[C];
        for (int c = 0; c < C; ++c) xv[c] = _mm512_maskz_loadu_ps(m, a.f_row(c0 + c) + j);
        for (int r = 0; r < R; ++r) {
            const __m512 wv = W::load(wr[r] + j, m);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            y[size_t(c0 + c) * ys + size_t(n + r)] = _mm512_reduce_add_ps(acc[r][c]);
}

template <class W, int R>
void float_cols(const Tensor& w, int64_t n, const ActRows& a, float* y, size_t ys) {
    int64_t c0 = 0;
    for (; c0 + 4 <= a.m; c0 += 4) float_tile<W, R, 4>(w, n, a, c0, y, ys);
    switch (a.m - c0) {
        case 1:
            float_tile<W, R, 1>(w, n, a, c0, y, ys);
            break;
        case 2:
            float_tile<W, R, 2>(w, n, a, c0, y, ys);
            break;
        case 3:
            float_tile<W, R, 3>(w, n, a, c0, y, ys);
            break;
        default:
            break;
    }
}

// Many activation rows (more than kFloatDotMaxM): the AVX2 path's f32 panels of 16 weight
// rows (one 512-bit register per k, a lane per weight row, no horizontal sums), two side
// by side, against up to 12 activation rows: 24 accumulators, and per k two panel loads,
// 12 broadcasts and 24 FMAs. The activations come as act_tiles_avx512 rearranges them,
// tiles of kActTile rows with a k-step's values together: a tile reads them as one
// sequential stream, where rows read in place sit a power of two apart and their streams
// compete for the same L1 sets. Each output is one FMA chain over k, as in the AVX2 panel
// tile, so it has that tile's bits.
//
// P panels (16 P weight rows at n; panel p at P0 + p * 16 k) against NT activation tiles
// of C rows each (tile u at xt + u * C * k), from activation row c0 on.
template <int P, int NT, int C>
void float_panel_tile(const float* P0, int64_t k, const float* xt, int64_t c0, float* y, size_t ys,
                      int64_t n, int nr) {
    constexpr int R = NT * C;
    __m512 acc[P][R];
    for (int p = 0; p < P; ++p)
        for (int r = 0; r < R; ++r) acc[p][r] = _mm512_setzero_ps();
    for (int64_t j = 0; j < k; ++j) {
        __m512 pv[P];
        for (int p = 0; p < P; ++p) pv[p] = _mm512_loadu_ps(P0 + p * 16 * k + j * 16);
        for (int u = 0; u < NT; ++u)
            for (int c = 0; c < C; ++c) {
                const __m512 x = _mm512_set1_ps(xt[u * C * k + j * C + c]);
                for (int p = 0; p < P; ++p)
                    acc[p][u * C + c] = _mm512_fmadd_ps(pv[p], x, acc[p][u * C + c]);
            }
    }
    for (int p = 0; p < P; ++p) {
        const int np = std::min(16, nr - 16 * p);
        for (int r = 0; r < R; ++r) {
            // A masked store: the rows of a short panel only (a memcpy of a variable
            // length here was a library call per row, 1-2% of an F16 prompt).
            _mm512_mask_storeu_ps(y + size_t(c0 + r) * ys + size_t(n + 16 * p),
                                  __mmask16((1u << np) - 1), acc[p][r]);
        }
    }
}

// All activation rows against the P panels at P0, in the tiles of for_act_tiles.
template <int P>
void float_panel_rows(const float* P0, const ActRows& a, float* y, size_t ys, int64_t n, int nr) {
    static_assert(kActTile == 4);  // 3 tiles of 4 rows x 2 panels: 24 accumulators
    const int64_t k = a.k;
    for_act_tiles<kActTile>(a.m, [&](auto nt, auto rows, int64_t c) {
        float_panel_tile<P, nt(), rows()>(P0, k, a.ft.data() + c * k, c, y, ys, n, nr);
    });
}

template <class W>
void float_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    if (a.m <= kFloatDotMaxM) {
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) float_cols<W, 4>(w, n, a, y, ys);
        for (; n < n1; ++n) float_cols<W, 1>(w, n, a, y, ys);
        return;
    }
    thread_local PanelBuffer<float> buffer;
    float* panel = buffer.get(size_t(a.k) * 32);
    for (int64_t n = n0; n < n1; n += 32) {
        const int nr = int(std::min<int64_t>(32, n1 - n));
        build_float_panel_avx2(w, n, std::min(nr, 16), a.k, panel);
        if (nr > 16) {
            build_float_panel_avx2(w, n + 16, nr - 16, a.k, panel + a.k * 16);
            float_panel_rows<2>(panel, a, y, ys, n, nr);
        } else {
            float_panel_rows<1>(panel, a, y, ys, n, nr);
        }
    }
}

// The activation tiles of the float panels (ActRows::ft: tile t, rows 4t .. 4t + nc - 1 with
// nc = min(4, m - 4t), holds k-step j's values at ft[4t k + j nc + c]), after the AVX2
// path's tiles of the 8-bit kinds. Each row is written on its own, so threads may split
// the rows anywhere.
// Rows [m0, m1) of `rows` (n_rows of len values of T, len apart) into `tiles`: tile t holds
// rows 4t .. 4t + nc - 1 (nc = min(4, n_rows - 4t)), step j's values together at
// tiles[4t len + j nc + c]. (The rows are read as bytes: BF16 pairs come from uint16_t.)
template <class T>
void tile_rows(const void* rows, T* tiles, int64_t len, int64_t n_rows, int64_t m0, int64_t m1) {
    for (int64_t i = m0; i < m1; ++i) {
        const int64_t t0 = i / kActTile * kActTile;
        const int64_t nc = std::min<int64_t>(kActTile, n_rows - t0), c = i - t0;
        const auto* row = static_cast<const char*>(rows) + size_t(i * len) * sizeof(T);
        T* out = tiles + t0 * len + c;
        for (int64_t j = 0; j < len; ++j) std::memcpy(out + j * nc, row + j * sizeof(T), sizeof(T));
    }
}

void act_tiles_avx512(ActRows& a, int64_t m0, int64_t m1) {
    const bool is_float =
        a.kind == ActKind::F32 || a.kind == ActKind::F16 || a.kind == ActKind::BF16;
    if (!is_float) return act_tiles_avx2(a, m0, m1);
    if (a.m <= kFloatDotMaxM) return;
    // BF16 activations in pairs (ActRows::pt) feed the bf16 panels (bf16_matmul); with an
    // odd K they take the f32 panels (ActRows::ft).
    if (a.kind == ActKind::BF16 && a.k % 2 == 0)
        return tile_rows(a.h.data(), a.pt.data(), a.k / 2, a.m, m0, m1);
    tile_rows(a.f.data(), a.ft.data(), a.k, a.m, m0, m1);
}

// Up to kVecMaxM activation rows (decode) the direct kernels above; more (a prompt) the VNNI
// panels of gemm_avx512.cpp, which the one-row design of quant_matmul cannot match: that
// design makes horizontal sums and unpacks each weight block again for every 8 activation
// rows. The cut-over is the AVX2 path's, not measured on an AVX-512 machine.
template <MatmulFn Vec, DType T>
constexpr MatmulFn vec_or_vnni = vec_or_panels<Vec, gemm_avx512, T>;

// Decode with this path's packed kernel where it has one (packed_avx512.cpp), else with the
// AVX2 path's direct kernel; prompts with the VNNI panels. The AVX2 kernels serve Q3_K and
// IQ4_XS, whose one-row kernels here decoded their scales element by element
// and ran at a third of the AVX2 rate (BM_DecodeKernelAvx512: 5.3 and 6.8 GB/s per core on
// a Zen 5, against 14.3 and 18.4).
template <DType T>
void borrowed_vec_or_vnni(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y,
                          size_t ys) {
    static const MatmulFn vec = packed_vec_avx512(T) ? packed_vec_avx512(T) : kernels_avx2().get(T);
    static const MatmulFn gemm = gemm_avx512(T);
    (a.m <= kVecMaxM ? vec : gemm)(w, n0, n1, a, y, ys);
}

// BF16 weights: the f32 dot-product tiles up to kFloatDotMaxM activation rows (where a row
// keeps its bits in any batch), the bf16 panels beyond (twice the f32 panels' rate; odd K
// has no pairs and stays on those).
void bf16_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    if (a.m <= kFloatDotMaxM || a.k % 2 != 0) return float_matmul<WBF16>(w, n0, n1, a, y, ys);
    bf16_panel_matmul<false>(w, n0, n1, a, y, ys);
}

KernelTable make_table() {
    KernelTable t;
    // The panels read the AVX2 path's activation tiles; its conversion is the reference's,
    // byte for byte, and faster.
    t.act_row = kernels_avx2().act_row;
    t.act_tiles = act_tiles_avx512;
    t.swiglu = swiglu_avx2;  // elementwise: 256-bit vectors are as fast here
    auto set = [&](DType d, MatmulFn f) { t.matmul[uint32_t(d)] = f; };
    set(DType::F32, float_matmul<WF32>);
    set(DType::F16, float_matmul<WF16>);
    set(DType::BF16, bf16_matmul);
    t.f16_as_bf16 = bf16_panel_matmul<true>;
    set(DType::Q4_0, vec_or_vnni<quant_matmul<LegacyTile, LQ4_0>, DType::Q4_0>);
    set(DType::Q4_1, vec_or_vnni<quant_matmul<LegacyTile, LQ4_1>, DType::Q4_1>);
    set(DType::Q5_0, vec_or_vnni<quant_matmul<LegacyTile, LQ5_0>, DType::Q5_0>);
    set(DType::Q5_1, vec_or_vnni<quant_matmul<LegacyTile, LQ5_1>, DType::Q5_1>);
    set(DType::Q8_0, vec_or_vnni<quant_matmul<LegacyTile, LQ8_0>, DType::Q8_0>);
    set(DType::IQ4_NL, vec_or_vnni<quant_matmul<LegacyTile, LIQ4_NL>, DType::IQ4_NL>);
    set(DType::Q2_K, vec_or_vnni<quant_matmul<KTile, KQ2>, DType::Q2_K>);
    set(DType::Q3_K, borrowed_vec_or_vnni<DType::Q3_K>);
    set(DType::Q4_K, vec_or_vnni<quant_matmul<KTile, KQ4>, DType::Q4_K>);
    set(DType::Q5_K, vec_or_vnni<quant_matmul<KTile, KQ5>, DType::Q5_K>);
    set(DType::Q6_K, vec_or_vnni<quant_matmul<KTile, KQ6>, DType::Q6_K>);
    set(DType::IQ4_XS, borrowed_vec_or_vnni<DType::IQ4_XS>);
    set(DType::Q4_0_R8, borrowed_vec_or_vnni<DType::Q4_0_R8>);
    set(DType::Q8_0_R8, borrowed_vec_or_vnni<DType::Q8_0_R8>);
    set(DType::Q4_K_R8, borrowed_vec_or_vnni<DType::Q4_K_R8>);
    set(DType::Q5_K_R8, borrowed_vec_or_vnni<DType::Q5_K_R8>);
    return t;
}

}  // namespace

const KernelTable& kernels_avx512() {
    static const KernelTable t = make_table();
    return t;
}

}  // namespace lcx::cpu
