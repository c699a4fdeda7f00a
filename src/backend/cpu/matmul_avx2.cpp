// AVX2 + FMA + F16C matrix products for every weight type.
//
// Same scheme as the AVX-512 kernels (see matmul_avx512.cpp) with 256-bit registers:
// each group of 256 weights is unpacked once into a small L1-resident buffer (bytes,
// per-lane scales, mins) and then multiplied against up to 8 activation rows. Byte
// products use vpmaddubsw + vpmaddwd. vpmaddubsw saturates at 16 bits, so only weights
// of at most 6 bits use the unsigned-offset trick; the signed formats (Q8_0, IQ4_NL,
// IQ4_XS) use |q_x| x sign(w, q_x) instead (|q_x| <= 128 and |w| <= 127 cannot saturate).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "common/fp16.h"
#include "quant/blocks.h"

namespace lcx::cpu {

namespace {

// F16C conversion: exact, as fp16_to_fp32.
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// One unpacked group of 256 weights.
struct Unp {
    alignas(32) uint8_t u[256];  // unsigned weights (int8 for the signed formats)
    alignas(32) float ls[64];    // scale of each 4-weight lane
    alignas(32) float mw[16];    // min per 16 (kMin16) or per 32 weights
};

inline void set_lanes32(Unp& p, int k, float s) {
    for (int i = 0; i < 8; ++i) p.ls[8 * k + i] = s;
}

inline void split_nibbles16(const uint8_t* qs, uint8_t* lo, uint8_t* hi) {
    const __m128i v = _mm_loadu_si128((const __m128i*)qs);
    const __m128i m = _mm_set1_epi8(0x0F);
    _mm_storeu_si128((__m128i*)lo, _mm_and_si128(v, m));
    _mm_storeu_si128((__m128i*)hi, _mm_and_si128(_mm_srli_epi16(v, 4), m));
}

// ---- legacy formats: up to 8 blocks per group ---------------------------------------------
struct AQ4_0 {
    using B = BlockQ4_0;
    static constexpr bool kSigned = false;
    static void unpack(const B* x, int nb, Unp& p) {
        for (int b = 0; b < nb; ++b) {
            split_nibbles16(x[b].qs, p.u + 32 * b, p.u + 32 * b + 16);
            const float d = h2f(x[b].d);
            set_lanes32(p, b, d);
            p.mw[b] = -8.0f * d;
        }
    }
};
struct AQ4_1 {
    using B = BlockQ4_1;
    static constexpr bool kSigned = false;
    static void unpack(const B* x, int nb, Unp& p) {
        for (int b = 0; b < nb; ++b) {
            split_nibbles16(x[b].qs, p.u + 32 * b, p.u + 32 * b + 16);
            set_lanes32(p, b, h2f(x[b].d));
            p.mw[b] = h2f(x[b].m);
        }
    }
};
template <class B>
inline void q5_bits(const B& x, uint8_t* u) {
    split_nibbles16(x.qs, u, u + 16);
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    for (int j = 0; j < 32; ++j) u[j] = uint8_t(u[j] | (((qh >> j) & 1) << 4));
}
struct AQ5_0 {
    using B = BlockQ5_0;
    static constexpr bool kSigned = false;
    static void unpack(const B* x, int nb, Unp& p) {
        for (int b = 0; b < nb; ++b) {
            q5_bits(x[b], p.u + 32 * b);
            const float d = h2f(x[b].d);
            set_lanes32(p, b, d);
            p.mw[b] = -16.0f * d;
        }
    }
};
struct AQ5_1 {
    using B = BlockQ5_1;
    static constexpr bool kSigned = false;
    static void unpack(const B* x, int nb, Unp& p) {
        for (int b = 0; b < nb; ++b) {
            q5_bits(x[b], p.u + 32 * b);
            set_lanes32(p, b, h2f(x[b].d));
            p.mw[b] = h2f(x[b].m);
        }
    }
};
struct AQ8_0 {
    using B = BlockQ8_0;
    static constexpr bool kSigned = true;
    static void unpack(const B* x, int nb, Unp& p) {
        for (int b = 0; b < nb; ++b) {
            std::memcpy(p.u + 32 * b, x[b].qs, 32);
            set_lanes32(p, b, h2f(x[b].d));
        }
    }
};
inline void iq4_16(const uint8_t* qs, uint8_t* lo, uint8_t* hi) {
    const __m128i tbl = _mm_loadu_si128((const __m128i*)kvalues_iq4nl);
    const __m128i v = _mm_loadu_si128((const __m128i*)qs);
    const __m128i m = _mm_set1_epi8(0x0F);
    _mm_storeu_si128((__m128i*)lo, _mm_shuffle_epi8(tbl, _mm_and_si128(v, m)));
    _mm_storeu_si128((__m128i*)hi, _mm_shuffle_epi8(tbl, _mm_and_si128(_mm_srli_epi16(v, 4), m)));
}
struct AIQ4_NL {
    using B = BlockIQ4_NL;
    static constexpr bool kSigned = true;
    static void unpack(const B* x, int nb, Unp& p) {
        for (int b = 0; b < nb; ++b) {
            iq4_16(x[b].qs, p.u + 32 * b, p.u + 32 * b + 16);
            set_lanes32(p, b, h2f(x[b].d));
        }
    }
};

// ---- K formats: one super-block per group --------------------------------------------------
inline void k4_scales(const uint8_t* s, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u[4];
    std::memcpy(u, s, 12);
    constexpr uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    u[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    const uint32_t t = u[1] & m1;
    u[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    u[2] = t;
    u[0] &= m1;
    std::memcpy(sc, &u[0], 8);
    std::memcpy(mn, &u[2], 8);
}
// As k4_scales, in registers: byte j of sc / mn is scale / min j.
inline void k4_scales64(const uint8_t* s, uint64_t& sc, uint64_t& mn) {
    uint32_t u0, u1, u2;
    std::memcpy(&u0, s, 4);
    std::memcpy(&u1, s + 4, 4);
    std::memcpy(&u2, s + 8, 4);
    constexpr uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    const uint32_t sc_hi = (u2 & m2) | (((u0 >> 6) & m3) << 4);
    const uint32_t mn_hi = ((u2 >> 4) & m2) | (((u1 >> 6) & m3) << 4);
    sc = uint64_t(u0 & m1) | (uint64_t(sc_hi) << 32);
    mn = uint64_t(u1 & m1) | (uint64_t(mn_hi) << 32);
}
inline void set_lanes16(Unp& p, const float* s16) {
    for (int l = 0; l < 64; ++l) p.ls[l] = s16[l / 4];
}

struct KQ4 {
    using B = BlockQ4_K;
    static constexpr bool kSigned = false, kMin16 = false;
    static void unpack(const B* x, Unp& p) {
        uint8_t sc[8], mn[8];
        k4_scales(x->scales, sc, mn);
        const float d = h2f(x->d), dm = h2f(x->dmin);
        const __m256i m = _mm256_set1_epi8(0x0F);
        for (int j = 0; j < 4; ++j) {
            const __m256i v = _mm256_loadu_si256((const __m256i*)(x->qs + 32 * j));
            _mm256_store_si256((__m256i*)(p.u + 64 * j), _mm256_and_si256(v, m));
            _mm256_store_si256((__m256i*)(p.u + 64 * j + 32),
                               _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
        }
        for (int k = 0; k < 8; ++k) {
            set_lanes32(p, k, d * float(sc[k]));
            p.mw[k] = -dm * float(mn[k]);
        }
    }
};
struct KQ5 {
    using B = BlockQ5_K;
    static constexpr bool kSigned = false, kMin16 = false;
    static void unpack(const B* x, Unp& p) {
        uint8_t sc[8], mn[8];
        k4_scales(x->scales, sc, mn);
        const float d = h2f(x->d), dm = h2f(x->dmin);
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 32; ++l) {
                p.u[64 * j + l] =
                    uint8_t((x->qs[32 * j + l] & 15) | (((x->qh[l] >> (2 * j)) & 1) << 4));
                p.u[64 * j + 32 + l] =
                    uint8_t((x->qs[32 * j + l] >> 4) | (((x->qh[l] >> (2 * j + 1)) & 1) << 4));
            }
        for (int k = 0; k < 8; ++k) {
            set_lanes32(p, k, d * float(sc[k]));
            p.mw[k] = -dm * float(mn[k]);
        }
    }
};
struct KQ6 {
    using B = BlockQ6_K;
    static constexpr bool kSigned = false, kMin16 = true;
    static void unpack(const B* x, Unp& p) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i*)(x->ql + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i*)(x->ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i*)(x->qh + 32 * h));
            uint8_t* u = p.u + 128 * h;
            _mm256_store_si256((__m256i*)(u + 0),
                               _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3)));
            _mm256_store_si256((__m256i*)(u + 32),
                               _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3)));
            _mm256_store_si256((__m256i*)(u + 64),
                               _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                               _mm256_and_si256(qh, m3)));
            _mm256_store_si256((__m256i*)(u + 96),
                               _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3)));
        }
        const float d = h2f(x->d);
        float s[16];
        for (int g = 0; g < 16; ++g) {
            s[g] = d * float(x->scales[g]);
            p.mw[g] = -32.0f * s[g];
        }
        set_lanes16(p, s);
    }
};
struct KQ3 {
    using B = BlockQ3_K;
    static constexpr bool kSigned = false, kMin16 = true;
    static void unpack(const B* x, Unp& p) {
        uint32_t a[4];
        std::memcpy(a, x->scales, 12);
        constexpr uint32_t m1 = 0x03030303, m2 = 0x0f0f0f0f;
        const uint32_t t = a[2];
        a[2] = ((a[0] >> 4) & m2) | (((t >> 4) & m1) << 4);
        a[3] = ((a[1] >> 4) & m2) | (((t >> 6) & m1) << 4);
        a[0] = (a[0] & m2) | (((t >> 0) & m1) << 4);
        a[1] = (a[1] & m2) | (((t >> 2) & m1) << 4);
        uint8_t sc[16];
        std::memcpy(sc, a, 16);
        const float d = h2f(x->d);
        float s[16];
        for (int g = 0; g < 16; ++g) {
            s[g] = d * float(int(sc[g]) - 32);
            p.mw[g] = -4.0f * s[g];
        }
        set_lanes16(p, s);
        for (int h = 0; h < 2; ++h)
            for (int j = 0; j < 4; ++j)
                for (int l = 0; l < 32; ++l)
                    p.u[128 * h + 32 * j + l] =
                        uint8_t(((x->qs[32 * h + l] >> (2 * j)) & 3) +
                                ((x->hmask[l] & (1 << (4 * h + j))) ? 4 : 0));
    }
};
struct KQ2 {
    using B = BlockQ2_K;
    static constexpr bool kSigned = false, kMin16 = true;
    static void unpack(const B* x, Unp& p) {
        const float d = h2f(x->d), dm = h2f(x->dmin);
        float s[16];
        for (int g = 0; g < 16; ++g) {
            s[g] = d * float(x->scales[g] & 15);
            p.mw[g] = -dm * float(x->scales[g] >> 4);
        }
        set_lanes16(p, s);
        for (int h = 0; h < 2; ++h)
            for (int j = 0; j < 4; ++j)
                for (int l = 0; l < 32; ++l)
                    p.u[128 * h + 32 * j + l] = uint8_t((x->qs[32 * h + l] >> (2 * j)) & 3);
    }
};
struct KIQ4_XS {
    using B = BlockIQ4_XS;
    static constexpr bool kSigned = true, kMin16 = false;
    static void unpack(const B* x, Unp& p) {
        const float d = h2f(x->d);
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = ((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) |
                           (((x->scales_h >> (2 * ib)) & 3) << 4);
            set_lanes32(p, ib, d * float(ls - 32));
            iq4_16(x->qs + 16 * ib, p.u + 32 * ib, p.u + 32 * ib + 16);
        }
    }
};

// 8 lanes of 4-byte dot products of 32 weights with 32 activation quants.
template <bool kSigned>
inline __m256i dot32(const uint8_t* u, const int8_t* q) {
    const __m256i w = _mm256_load_si256((const __m256i*)u);
    const __m256i x = _mm256_loadu_si256((const __m256i*)q);
    __m256i p;
    if constexpr (kSigned)
        p = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w, x));
    else
        p = _mm256_maddubs_epi16(w, x);
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class L, int C>
void legacy_tile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
    using B = typename L::B;
    const int64_t nb = a.k / 32;
    const B* x = reinterpret_cast<const B*>(w.row(n));
    __m256 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    Unp p;
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const int cnt = int(std::min<int64_t>(8, nb - b0));
        L::unpack(x + b0, cnt, p);
        for (int c = 0; c < C; ++c) {
            const int64_t cc = c0 + c;
            const int8_t* q = a.q_row(cc) + b0 * 32;
            const float* dx = a.d_row(cc) + b0;
            __m256 t = acc[c];
            for (int k = 0; k < cnt; ++k) {
                const __m256 s =
                    _mm256_mul_ps(_mm256_load_ps(p.ls + 8 * k), _mm256_broadcast_ss(dx + k));
                t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot32<L::kSigned>(p.u + 32 * k, q + 32 * k)),
                                    s, t);
            }
            if constexpr (!L::kSigned) {
                const float* sx = a.s32_row(cc) + b0;
                if (cnt == 8) {
                    t = _mm256_fmadd_ps(_mm256_load_ps(p.mw), _mm256_loadu_ps(sx), t);
                } else {
                    alignas(32) float tmp[8] = {};
                    for (int k = 0; k < cnt; ++k) tmp[k] = p.mw[k] * sx[k];
                    t = _mm256_add_ps(t, _mm256_load_ps(tmp));
                }
            }
            acc[c] = t;
        }
    }
    for (int c = 0; c < C; ++c) y[size_t(c0 + c) * ys + size_t(n)] = hsum(acc[c]);
}

template <class U, int C>
void k_tile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
    using B = typename U::B;
    const int64_t nsb = a.k / 256;
    const B* x = reinterpret_cast<const B*>(w.row(n));
    __m256 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    Unp p;
    for (int64_t sb = 0; sb < nsb; ++sb) {
        U::unpack(x + sb, p);
        for (int c = 0; c < C; ++c) {
            const int64_t cc = c0 + c;
            const int8_t* q = a.q_row(cc) + sb * 256;
            __m256 t = _mm256_setzero_ps();
            for (int k = 0; k < 8; ++k)
                t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot32<U::kSigned>(p.u + 32 * k, q + 32 * k)),
                                    _mm256_load_ps(p.ls + 8 * k), t);
            __m256 r = _mm256_fmadd_ps(t, _mm256_set1_ps(a.d_row(cc)[sb]), acc[c]);
            if constexpr (!U::kSigned) {
                if constexpr (U::kMin16) {
                    const float* sx = a.s16_row(cc) + sb * 16;
                    r = _mm256_fmadd_ps(_mm256_load_ps(p.mw), _mm256_loadu_ps(sx), r);
                    r = _mm256_fmadd_ps(_mm256_load_ps(p.mw + 8), _mm256_loadu_ps(sx + 8), r);
                } else {
                    r = _mm256_fmadd_ps(_mm256_load_ps(p.mw),
                                        _mm256_loadu_ps(a.s32_row(cc) + sb * 8), r);
                }
            }
            acc[c] = r;
        }
    }
    for (int c = 0; c < C; ++c) y[size_t(c0 + c) * ys + size_t(n)] = hsum(acc[c]);
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

// ---- decode-shaped products (few activation rows): direct dot products ------------------
// With one or two activation rows there is nothing to amortize an unpacked buffer over, so
// these kernels read each weight block once straight into registers. Integer block sums
// of 8 blocks are reduced into one vector (one lane per block) and scaled together, and
// the block scales of 8 legacy blocks are converted together (inserts beat vpgatherdd on
// AMD).

// Lane b of the result = sum of the 8 int32 lanes of v[b].
inline __m256i reduce8(const __m256i v[8]) {
    const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// The fp16 scales (first field) of 8 consecutive blocks of `stride` bytes, as floats.
inline __m256 block_scales8(const void* first, int stride) {
    const auto* p = static_cast<const uint8_t*>(first);
    uint16_t h[8];
    for (int i = 0; i < 8; ++i) std::memcpy(&h[i], p + i * stride, 2);
    __m128i v = _mm_cvtsi32_si128(h[0]);
    v = _mm_insert_epi16(v, h[1], 1);
    v = _mm_insert_epi16(v, h[2], 2);
    v = _mm_insert_epi16(v, h[3], 3);
    v = _mm_insert_epi16(v, h[4], 4);
    v = _mm_insert_epi16(v, h[5], 5);
    v = _mm_insert_epi16(v, h[6], 6);
    v = _mm_insert_epi16(v, h[7], 7);
    return _mm256_cvtph_ps(v);
}

inline __m256i q4_0_block(const uint8_t* qs) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)qs));
    return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                            _mm256_set1_epi8(0x0F));
}

struct VQ4_0 {
    using B = BlockQ4_0;
    static __m256i dot(const B& x, const int8_t* q) {
        return _mm256_madd_epi16(
            _mm256_maddubs_epi16(q4_0_block(x.qs), _mm256_loadu_si256((const __m256i*)q)),
            _mm256_set1_epi16(1));
    }
    // d_w * (d_x * isum - 8 * s_x)
    static __m256 finish(__m256 dw, __m256 isum, __m256 dx, __m256 sx) {
        return _mm256_mul_ps(dw,
                             _mm256_fmadd_ps(dx, isum, _mm256_mul_ps(_mm256_set1_ps(-8.0f), sx)));
    }
    static float finish1(float dw, int isum, float dx, float sx) {
        return dw * (dx * float(isum) - 8.0f * sx);
    }
};
struct VQ8_0 {
    using B = BlockQ8_0;
    static __m256i dot(const B& x, const int8_t* q) {
        const __m256i w = _mm256_loadu_si256((const __m256i*)x.qs);
        const __m256i a = _mm256_loadu_si256((const __m256i*)q);
        return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)),
                                 _mm256_set1_epi16(1));
    }
    static __m256 finish(__m256 dw, __m256 isum, __m256 dx, __m256) {
        return _mm256_mul_ps(dw, _mm256_mul_ps(dx, isum));
    }
    static float finish1(float dw, int isum, float dx, float) { return dw * (dx * float(isum)); }
};

template <class V>
float legacy_vec_row(const typename V::B* x, const ActRows& a, int64_t c) {
    const int64_t nb = a.k / 32;
    const int8_t* q = a.q_row(c);
    const float* dx = a.d_row(c);
    const float* sx = a.s32_row(c);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b0 = 0;
    for (; b0 + 16 <= nb; b0 += 16) {
        __m256i s[8];
        for (int b = 0; b < 8; ++b) s[b] = V::dot(x[b0 + b], q + 32 * (b0 + b));
        acc0 = _mm256_add_ps(
            acc0, V::finish(block_scales8(x + b0, sizeof(x[0])), _mm256_cvtepi32_ps(reduce8(s)),
                            _mm256_loadu_ps(dx + b0), _mm256_loadu_ps(sx + b0)));
        for (int b = 0; b < 8; ++b) s[b] = V::dot(x[b0 + 8 + b], q + 32 * (b0 + 8 + b));
        acc1 = _mm256_add_ps(
            acc1, V::finish(block_scales8(x + b0 + 8, sizeof(x[0])), _mm256_cvtepi32_ps(reduce8(s)),
                            _mm256_loadu_ps(dx + b0 + 8), _mm256_loadu_ps(sx + b0 + 8)));
    }
    for (; b0 + 8 <= nb; b0 += 8) {
        __m256i s[8];
        for (int b = 0; b < 8; ++b) s[b] = V::dot(x[b0 + b], q + 32 * (b0 + b));
        acc0 = _mm256_add_ps(
            acc0, V::finish(block_scales8(x + b0, sizeof(x[0])), _mm256_cvtepi32_ps(reduce8(s)),
                            _mm256_loadu_ps(dx + b0), _mm256_loadu_ps(sx + b0)));
    }
    float r = hsum(_mm256_add_ps(acc0, acc1));
    for (; b0 < nb; ++b0)
        r += V::finish1(h2f(x[b0].d), hsum_i32(V::dot(x[b0], q + 32 * b0)), dx[b0], sx[b0]);
    return r;
}

template <class V>
void legacy_vec(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    for (int64_t c = 0; c < a.m; ++c)
        for (int64_t n = n0; n < n1; ++n)
            y[size_t(c) * ys + size_t(n)] =
                legacy_vec_row<V>(reinterpret_cast<const typename V::B*>(w.row(n)), a, c);
}

// Q4_K: per super-block, the integer sum over 8 sub-blocks of scale_j * (u . q) is exact in
// int32; the mins use the activation's per-32 sums.
float q4k_vec_row(const BlockQ4_K* x, const ActRows& a, int64_t c) {
    const int64_t nsb = a.k / 256;
    const int8_t* q = a.q_row(c);
    const float* dxs = a.d_row(c);
    const float* sx = a.s32_row(c);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        uint64_t sc64, mn64;
        k4_scales64(x[sb].scales, sc64, mn64);
        const __m256i sc16 =
            _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sc64))));
        const int8_t* qb = q + sb * 256;
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i v = _mm256_loadu_si256((const __m256i*)(x[sb].qs + 32 * j));
            const __m256i lo = _mm256_and_si256(v, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            const __m256i plo =
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(qb + 64 * j)));
            const __m256i phi =
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(qb + 64 * j + 32)));
            const __m256i slo =
                _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * (2 * j))));
            const __m256i shi = _mm256_shuffle_epi8(
                sc16, _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * (2 * j + 1))));
            sum = _mm256_add_epi32(
                sum, _mm256_add_epi32(_mm256_madd_epi16(plo, slo), _mm256_madd_epi16(phi, shi)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[sb].d) * dxs[sb]), _mm256_cvtepi32_ps(sum), acc);
        const __m256 mnf =
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(mn64))));
        accm = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(h2f(x[sb].dmin)), mnf),
                               _mm256_loadu_ps(sx + sb * 8), accm);
    }
    return hsum(_mm256_sub_ps(acc, accm));
}

// Q6_K: 6-bit unsigned quants (offset 32 folded into the per-16 activation sums), signed
// 8-bit scales per 16 applied in int32.
float q6k_vec_row(const BlockQ6_K* x, const ActRows& a, int64_t c) {
    const int64_t nsb = a.k / 256;
    const int8_t* q = a.q_row(c);
    const float* dxs = a.d_row(c);
    const float* sx = a.s16_row(c);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        const BlockQ6_K& b = x[sb];
        const __m128i sc8 = _mm_loadu_si128((const __m128i*)b.scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const int8_t* qb = q + sb * 256;
        __m256i sum = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i*)(b.qh + 32 * h));
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3));
            u[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_and_si256(qh, m3));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3));
            // Scales of sub-blocks 8h+2j (low lane) and 8h+2j+1 (high lane).
            const __m256i sh = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                 : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            for (int j = 0; j < 4; ++j) {
                const __m256i p = _mm256_maddubs_epi16(
                    u[j], _mm256_loadu_si256((const __m256i*)(qb + 128 * h + 32 * j)));
                const int lo = 4 * j, hi = 4 * j + 2;
                const __m256i s = _mm256_shuffle_epi8(
                    sh, _mm256_setr_epi8(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1,
                                         lo, lo + 1, lo, lo + 1, lo, lo + 1, hi, hi + 1, hi, hi + 1,
                                         hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1,
                                         hi, hi + 1));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, s));
            }
        }
        const float d = h2f(b.d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dxs[sb]), _mm256_cvtepi32_ps(sum), acc);
        const __m256 s0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8));
        const __m256 s1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8)));
        const __m256 dd = _mm256_set1_ps(32.0f * d);
        accm = _mm256_fmadd_ps(_mm256_mul_ps(dd, s0), _mm256_loadu_ps(sx + sb * 16), accm);
        accm = _mm256_fmadd_ps(_mm256_mul_ps(dd, s1), _mm256_loadu_ps(sx + sb * 16 + 8), accm);
    }
    return hsum(_mm256_sub_ps(acc, accm));
}

template <class B, float (*Row)(const B*, const ActRows&, int64_t)>
void k_vec(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    for (int64_t c = 0; c < a.m; ++c)
        for (int64_t n = n0; n < n1; ++n)
            y[size_t(c) * ys + size_t(n)] = Row(reinterpret_cast<const B*>(w.row(n)), a, c);
}

// Up to kVecMaxM activation rows use the direct kernel, more the unpacked tiles.
constexpr int64_t kVecMaxM = 2;
template <MatmulFn Vec, MatmulFn Tiled>
void vec_or_tiled(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    if (a.m <= kVecMaxM)
        Vec(w, n0, n1, a, y, ys);
    else
        Tiled(w, n0, n1, a, y, ys);
}

// ---- prompt-shaped products: one unpacked weight row against many activation rows ------
// A whole weight row is unpacked once into a thread-local, L1-resident buffer (bytes plus
// scales in the form the dot product wants), then dotted with a chunk of activation rows.
// Legacy formats: the integer sums of 8 blocks are reduced into one vector (a lane per
// block) and scaled by 8 block-scale products at once. K formats: sub-block scales are
// applied in int32 (vpmaddwd with the scale as a 16-bit vector), one float step per
// super-block.
struct alignas(32) V32 {
    uint8_t b[32];
};
struct RowBuf {
    std::vector<V32> u_;    // unpacked weights, 32 per vector (Q8_0: |w| then w)
    std::vector<V32> sc_;   // K formats: int16 scale vector per 32 weights
    std::vector<float> dw;  // scale per block (legacy) or super-block (K)
    std::vector<float> mw;  // min per 32 (Q4_0, Q4_K) or per 16 (Q6_K) weights
    void resize(int64_t k, bool two) {
        u_.resize(size_t(k / 32) * (two ? 2 : 1));
        sc_.resize(size_t(k / 32));
        dw.resize(size_t(k / 32));
        mw.resize(size_t(k / 16));
    }
    __m256i* u() { return reinterpret_cast<__m256i*>(u_.data()); }
    const __m256i* u() const { return reinterpret_cast<const __m256i*>(u_.data()); }
    __m256i* sc() { return reinterpret_cast<__m256i*>(sc_.data()); }
    const __m256i* sc() const { return reinterpret_cast<const __m256i*>(sc_.data()); }
};
RowBuf& row_buf() {
    static thread_local RowBuf b;
    return b;
}
RowBuf& row_buf2() {
    static thread_local RowBuf b;
    return b;
}

struct PQ4_0 {
    using B = BlockQ4_0;
    static constexpr bool kTwo = false;
    static void unpack(const B* x, int64_t nb, RowBuf& r) {
        for (int64_t b = 0; b < nb; ++b) {
            r.u()[size_t(b)] = q4_0_block(x[b].qs);
            r.dw[size_t(b)] = h2f(x[b].d);
            r.mw[size_t(b)] = -8.0f * r.dw[size_t(b)];
        }
    }
    static __m256i dot(const RowBuf& r, int64_t, int64_t b, const int8_t* q) {
        return _mm256_madd_epi16(
            _mm256_maddubs_epi16(r.u()[size_t(b)], _mm256_loadu_si256((const __m256i*)q)),
            _mm256_set1_epi16(1));
    }
};
struct PQ8_0 {
    using B = BlockQ8_0;
    static constexpr bool kTwo = true;
    static void unpack(const B* x, int64_t nb, RowBuf& r) {
        for (int64_t b = 0; b < nb; ++b) {
            const __m256i w = _mm256_loadu_si256((const __m256i*)x[b].qs);
            r.u()[size_t(b)] = _mm256_abs_epi8(w);
            r.u()[size_t(nb + b)] = w;
            r.dw[size_t(b)] = h2f(x[b].d);
            r.mw[size_t(b)] = 0.0f;
        }
    }
    static __m256i dot(const RowBuf& r, int64_t nb, int64_t b, const int8_t* q) {
        const __m256i a = _mm256_loadu_si256((const __m256i*)q);
        return _mm256_madd_epi16(
            _mm256_maddubs_epi16(r.u()[size_t(b)], _mm256_sign_epi8(a, r.u()[size_t(nb + b)])),
            _mm256_set1_epi16(1));
    }
};

template <class P>
float legacy_row_dot(const RowBuf& r, int64_t nb, const ActRows& a, int64_t c) {
    const int8_t* q = a.q_row(c);
    const float* dx = a.d_row(c);
    const float* sx = a.s32_row(c);
    __m256 acc = _mm256_setzero_ps();
    int64_t b0 = 0;
    for (; b0 + 8 <= nb; b0 += 8) {
        __m256i s[8];
        for (int b = 0; b < 8; ++b) s[b] = P::dot(r, nb, b0 + b, q + 32 * (b0 + b));
        const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(r.dw.data() + b0), _mm256_loadu_ps(dx + b0));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(reduce8(s)), acc);
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(r.mw.data() + b0), _mm256_loadu_ps(sx + b0), acc);
    }
    float t = hsum(acc);
    for (; b0 < nb; ++b0)
        t += r.dw[size_t(b0)] * dx[b0] * float(hsum_i32(P::dot(r, nb, b0, q + 32 * b0))) +
             r.mw[size_t(b0)] * sx[b0];
    return t;
}

// Two unpacked weight rows against one activation row: each activation vector is loaded
// once for both. Per row, exactly the operations of legacy_row_dot (integer block sums are
// exact whatever their order), so a row's result does not depend on its partner.
template <class P>
void legacy_row_dot2(const RowBuf& r0, const RowBuf& r1, int64_t nb, const ActRows& a, int64_t c,
                     float& y0, float& y1) {
    const int8_t* q = a.q_row(c);
    const float* dx = a.d_row(c);
    const float* sx = a.s32_row(c);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b0 = 0;
    for (; b0 + 8 <= nb; b0 += 8) {
        __m256i s0[8], s1[8];
        for (int b = 0; b < 8; ++b) {
            const int8_t* qb = q + 32 * (b0 + b);
            s0[b] = P::dot(r0, nb, b0 + b, qb);
            s1[b] = P::dot(r1, nb, b0 + b, qb);
        }
        const __m256 dxv = _mm256_loadu_ps(dx + b0), sxv = _mm256_loadu_ps(sx + b0);
        acc0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(r0.dw.data() + b0), dxv),
                               _mm256_cvtepi32_ps(reduce8(s0)), acc0);
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.mw.data() + b0), sxv, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(r1.dw.data() + b0), dxv),
                               _mm256_cvtepi32_ps(reduce8(s1)), acc1);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.mw.data() + b0), sxv, acc1);
    }
    float t0 = hsum(acc0), t1 = hsum(acc1);
    for (; b0 < nb; ++b0) {
        t0 += r0.dw[size_t(b0)] * dx[b0] * float(hsum_i32(P::dot(r0, nb, b0, q + 32 * b0))) +
              r0.mw[size_t(b0)] * sx[b0];
        t1 += r1.dw[size_t(b0)] * dx[b0] * float(hsum_i32(P::dot(r1, nb, b0, q + 32 * b0))) +
              r1.mw[size_t(b0)] * sx[b0];
    }
    y0 = t0;
    y1 = t1;
}

struct PQ4_K {
    using B = BlockQ4_K;
    static constexpr bool kTwo = false;
    static constexpr int kMins = 8;
    static void unpack(const B* x, int64_t nsb, RowBuf& r) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            uint8_t sc[8], mn[8];
            k4_scales(x[sb].scales, sc, mn);
            __m256i* u = r.u() + 8 * sb;
            for (int j = 0; j < 4; ++j) {
                const __m256i v = _mm256_loadu_si256((const __m256i*)(x[sb].qs + 32 * j));
                u[2 * j] = _mm256_and_si256(v, m4);
                u[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
            const float dm = h2f(x[sb].dmin);
            for (int j = 0; j < 8; ++j) {
                r.sc()[size_t(8 * sb + j)] = _mm256_set1_epi16(int16_t(sc[j]));
                r.mw[size_t(8 * sb + j)] = -dm * float(mn[j]);
            }
            r.dw[size_t(sb)] = h2f(x[sb].d);
        }
    }
};
struct PQ6_K {
    using B = BlockQ6_K;
    static constexpr bool kTwo = false;
    static constexpr int kMins = 16;
    static void unpack(const B* x, int64_t nsb, RowBuf& r) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x30);
        for (int64_t sb = 0; sb < nsb; ++sb) {
            const BlockQ6_K& b = x[sb];
            __m256i* u = r.u() + 8 * sb;
            for (int h = 0; h < 2; ++h) {
                const __m256i ql0 = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h));
                const __m256i ql1 = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i*)(b.qh + 32 * h));
                u[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3));
                u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3));
                u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                               _mm256_and_si256(qh, m3));
                u[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3));
            }
            const float d = h2f(b.d);
            for (int j = 0; j < 8; ++j)
                r.sc()[size_t(8 * sb + j)] =
                    _mm256_setr_m128i(_mm_set1_epi16(int16_t(b.scales[2 * j])),
                                      _mm_set1_epi16(int16_t(b.scales[2 * j + 1])));
            for (int g = 0; g < 16; ++g)
                r.mw[size_t(16 * sb + g)] = -32.0f * d * float(b.scales[g]);
            r.dw[size_t(sb)] = d;
        }
    }
};

template <class P>
float k_row_dot(const RowBuf& r, int64_t nsb, const ActRows& a, int64_t c) {
    const int8_t* q = a.q_row(c);
    const float* dx = a.d_row(c);
    const float* sx = P::kMins == 8 ? a.s32_row(c) : a.s16_row(c);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        const __m256i* u = r.u() + 8 * sb;
        const __m256i* sc = r.sc() + 8 * sb;
        const int8_t* qb = q + 256 * sb;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (int j = 0; j < 8; j += 2) {
            s0 = _mm256_add_epi32(
                s0, _mm256_madd_epi16(_mm256_maddubs_epi16(
                                          u[j], _mm256_loadu_si256((const __m256i*)(qb + 32 * j))),
                                      sc[j]));
            s1 = _mm256_add_epi32(
                s1, _mm256_madd_epi16(
                        _mm256_maddubs_epi16(
                            u[j + 1], _mm256_loadu_si256((const __m256i*)(qb + 32 * j + 32))),
                        sc[j + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(r.dw[size_t(sb)] * dx[sb]),
                              _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
        const float* mw = r.mw.data() + P::kMins * sb;
        const float* sxb = sx + P::kMins * sb;
        accm = _mm256_fmadd_ps(_mm256_loadu_ps(mw), _mm256_loadu_ps(sxb), accm);
        if constexpr (P::kMins == 16)
            accm = _mm256_fmadd_ps(_mm256_loadu_ps(mw + 8), _mm256_loadu_ps(sxb + 8), accm);
    }
    return hsum(_mm256_add_ps(acc, accm));
}

// Activation rows per chunk: 64 rows of K = 4096 int8 quants stay in L2.
constexpr int64_t kColChunk = 64;

template <class P, bool kK>
void rows_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    using B = typename P::B;
    RowBuf& r = row_buf();
    r.resize(a.k, P::kTwo);
    const int64_t nb = kK ? a.k / 256 : a.k / 32;
    for (int64_t c0 = 0; c0 < a.m; c0 += kColChunk) {
        const int64_t c1 = std::min(a.m, c0 + kColChunk);
        int64_t n = n0;
        if constexpr (!kK) {
            // Legacy formats: two rows at a time share every activation load.
            RowBuf& r1 = row_buf2();
            r1.resize(a.k, P::kTwo);
            for (; n + 2 <= n1; n += 2) {
                P::unpack(reinterpret_cast<const B*>(w.row(n)), nb, r);
                P::unpack(reinterpret_cast<const B*>(w.row(n + 1)), nb, r1);
                for (int64_t c = c0; c < c1; ++c)
                    legacy_row_dot2<P>(r, r1, nb, a, c, y[size_t(c) * ys + size_t(n)],
                                       y[size_t(c) * ys + size_t(n + 1)]);
            }
        }
        for (; n < n1; ++n) {
            P::unpack(reinterpret_cast<const B*>(w.row(n)), nb, r);
            for (int64_t c = c0; c < c1; ++c) {
                if constexpr (kK)
                    y[size_t(c) * ys + size_t(n)] = k_row_dot<P>(r, nb, a, c);
                else
                    y[size_t(c) * ys + size_t(n)] = legacy_row_dot<P>(r, nb, a, c);
            }
        }
    }
}

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

// ---- float formats -------------------------------------------------------------------------
struct WF32 {
    using T = float;
    static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
    static float one(const float* p) { return *p; }
};
struct WF16 {
    using T = uint16_t;
    static __m256 load(const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
    }
    static float one(const uint16_t* p) { return fp16_to_fp32(*p); }
};
struct WBF16 {
    using T = uint16_t;
    static __m256 load(const uint16_t* p) {
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
    }
    static float one(const uint16_t* p) { return bf16_to_fp32(*p); }
};

template <class W, int R, int C>
void float_tile(const Tensor& w, int64_t n, const ActRows& a, int64_t c0, float* y, size_t ys) {
    const int64_t k = a.k, k8 = k / 8 * 8;
    const typename W::T* wr[R];
    for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const typename W::T*>(w.row(n + r));
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    for (int64_t j = 0; j < k8; j += 8) {
        __m256 xv[C];
        for (int c = 0; c < C; ++c) xv[c] = _mm256_loadu_ps(a.f_row(c0 + c) + j);
        for (int r = 0; r < R; ++r) {
            const __m256 wv = W::load(wr[r] + j);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) {
            float s = hsum(acc[r][c]);
            const float* xr = a.f_row(c0 + c);
            for (int64_t j = k8; j < k; ++j) s += W::one(wr[r] + j) * xr[j];
            y[size_t(c0 + c) * ys + size_t(n + r)] = s;
        }
}

template <class W, int R>
void float_cols(const Tensor& w, int64_t n, const ActRows& a, float* y, size_t ys) {
    int64_t c0 = 0;
    for (; c0 + 3 <= a.m; c0 += 3) float_tile<W, R, 3>(w, n, a, c0, y, ys);
    switch (a.m - c0) {
        case 1:
            float_tile<W, R, 1>(w, n, a, c0, y, ys);
            break;
        case 2:
            float_tile<W, R, 2>(w, n, a, c0, y, ys);
            break;
        default:
            break;
    }
}

template <class W>
void float_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) float_cols<W, 4>(w, n, a, y, ys);
    for (; n < n1; ++n) float_cols<W, 1>(w, n, a, y, ys);
}

// ---- activation conversion -------------------------------------------------------------
// Q8_0/Q8_1 and F16 rows with the reference's exact arithmetic: the same amax, d = amax/127,
// id = 1/d, products x*id, round half away from zero (trunc(v + copysign(0.5 - 2^-25, v))
// equals std::round for |v| < 2^23), and IEEE fp16 rounding by F16C.
bool act_row_avx2(ActRows& a, const float* x, int64_t i) {
    const int64_t k = a.k;
    if (a.kind == ActKind::F16) {
        float* out = a.f.data() + i * k;
        int64_t j = 0;
        for (; j + 8 <= k; j += 8)
            _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + j),
                                                                      _MM_FROUND_TO_NEAREST_INT)));
        for (; j < k; ++j) out[j] = _cvtsh_ss(_cvtss_sh(x[j], _MM_FROUND_TO_NEAREST_INT));
        return true;
    }
    if (a.kind != ActKind::Q8_0 && a.kind != ActKind::Q8_1) return false;
    const int64_t nb = k / 32;
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.49999997f);
    int8_t* q = a.q.data() + i * k;
    for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + 32 * b;
        __m256 v[4];
        for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(xb + 8 * j);
        __m256 mx = _mm256_max_ps(
            _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
            _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m256 idv = _mm256_set1_ps(id);
        __m256i n[4];
        for (int j = 0; j < 4; ++j) {
            const __m256 p = _mm256_mul_ps(v[j], idv);
            const __m256 r =
                _mm256_round_ps(_mm256_add_ps(p, _mm256_or_ps(_mm256_and_ps(p, sign), half)),
                                _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            n[j] = _mm256_cvttps_epi32(r);
        }
        const int sum =
            hsum_i32(_mm256_add_epi32(_mm256_add_epi32(n[0], n[1]), _mm256_add_epi32(n[2], n[3])));
        const __m256i p16 =
            _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3]));
        _mm256_storeu_si256(
            (__m256i*)(q + 32 * b),
            _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        const float dh = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
        a.d[size_t(i * nb + b)] = dh;
        a.s32[size_t(i * nb + b)] = dh * float(sum);
    }
    return true;
}

KernelTable make_table() {
    KernelTable t;
    t.act_row = act_row_avx2;
    auto set = [&](DType d, MatmulFn f) { t.matmul[uint32_t(d)] = f; };
    set(DType::F32, float_matmul<WF32>);
    set(DType::F16, float_matmul<WF16>);
    set(DType::BF16, float_matmul<WBF16>);
    set(DType::Q4_0, vec_or_tiled<legacy_vec<VQ4_0>, rows_matmul<PQ4_0, false>>);
    set(DType::Q4_1, quant_matmul<LegacyTile, AQ4_1>);
    set(DType::Q5_0, quant_matmul<LegacyTile, AQ5_0>);
    set(DType::Q5_1, quant_matmul<LegacyTile, AQ5_1>);
    set(DType::Q8_0, vec_or_tiled<legacy_vec<VQ8_0>, rows_matmul<PQ8_0, false>>);
    set(DType::IQ4_NL, quant_matmul<LegacyTile, AIQ4_NL>);
    set(DType::Q2_K, quant_matmul<KTile, KQ2>);
    set(DType::Q3_K, quant_matmul<KTile, KQ3>);
    set(DType::Q4_K, vec_or_tiled<k_vec<BlockQ4_K, q4k_vec_row>, rows_matmul<PQ4_K, true>>);
    set(DType::Q5_K, quant_matmul<KTile, KQ5>);
    set(DType::Q6_K, vec_or_tiled<k_vec<BlockQ6_K, q6k_vec_row>, rows_matmul<PQ6_K, true>>);
    set(DType::IQ4_XS, quant_matmul<KTile, KIQ4_XS>);
    return t;
}

}  // namespace

const KernelTable& kernels_avx2() {
    static const KernelTable t = make_table();
    return t;
}

}  // namespace lcx::cpu
