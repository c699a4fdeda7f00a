// Vector math shared by the AVX2 kernel files (include only from *_avx2.cpp, which are
// compiled for AVX2 + FMA).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/repack.h"

namespace lcx::cpu {

// e^x for x <= 0 (Cephes polynomial, ~1 ulp); 0 below -87.3 (where e^x is subnormal) and
// for -inf.
inline __m256 exp_neg(__m256 x) {
    const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, z, x);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
}

// silu(g) * u = g / (1 + e^-g) * u, with e^-|g| only (never overflows): for g < 0,
// g / (1 + e^-g) = g e^g / (1 + e^g).
inline __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 t = exp_neg(_mm256_or_ps(g, _mm256_set1_ps(-0.0f)));
    const __m256 neg = _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 num = _mm256_blendv_ps(g, _mm256_mul_ps(g, t), neg);
    return _mm256_mul_ps(_mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), t)), u);
}

// Lane b of the result = sum of the 8 int32 lanes of v[b].
inline __m256i reduce8(const __m256i v[8]) {
    const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

// Lane b of the result = sum of the 8 float lanes of v[b], by a fixed tree that reads
// v[b] alone.
inline __m256 reduce8_ps(const __m256 v[8]) {
    const __m256 h01 = _mm256_hadd_ps(v[0], v[1]), h23 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 h45 = _mm256_hadd_ps(v[4], v[5]), h67 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The largest of the 8 lanes.
inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// The 32 4-bit quants of a legacy block (16 bytes: low nibbles are weights 0-15, high
// nibbles 16-31) as 32 bytes in weight order.
inline __m256i nibbles32(const uint8_t* qs) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)qs));
    return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                            _mm256_set1_epi8(0x0F));
}

// 5-bit quants: the low nibbles plus bit j of qh as bit 4 of weight j.
template <class B>
inline __m256i q5_bits(const B& x) {
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    // Spread bit j of qh to byte j, then move it to bit 4.
    const __m256i shuf =
        _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(qh)), shuf);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
    const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit),
                                        _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(x.qs), hi);
}

// Q5_K: adds the fifth bits of 64-weight chunk j (qh: the super-block's 32 qh bytes) to its
// low-nibble (bit 2j of qh) and high-nibble (bit 2j + 1) weights, as 0x10.
inline void q5k_add_high(__m256i qh, int j, __m256i& lo, __m256i& hi) {
    const __m256i b4 = _mm256_set1_epi8(0x10);
    lo = _mm256_or_si256(lo,
                         _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * j), 4), b4));
    hi = _mm256_or_si256(
        hi, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * j + 1), 4), b4));
}

// Half h (weights 128h .. 128h + 127) of a Q6_K, Q3_K or Q2_K super-block as 4 vectors of
// 32 unsigned quants: vector j holds sub-blocks 8h + 2j and 8h + 2j + 1 (16 weights each).
inline void unpack_half(const BlockQ6_K& b, int h, __m256i u[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x30);
    const __m256i ql0 = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i*)(b.qh + 32 * h));
    u[0] =
        _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3));
    u[1] =
        _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3));
    u[2] =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m3));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3));
}
inline void unpack_half(const BlockQ3_K& b, int h, __m256i u[4]) {
    const __m256i m2 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    const __m256i hm = _mm256_loadu_si256((const __m256i*)b.hmask);
    const __m256i q = _mm256_loadu_si256((const __m256i*)(b.qs + 32 * h));
    for (int j = 0; j < 4; ++j) {
        // Bit 4h + j of each hmask byte moved to bit 2 (16-bit shifts: the bits that cross
        // from the neighbouring byte are masked off).
        const int sh = 4 * h + j - 2;
        const __m256i hi = _mm256_and_si256(
            sh >= 0 ? _mm256_srli_epi16(hm, sh) : _mm256_slli_epi16(hm, -sh), four);
        u[j] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m2), hi);
    }
}

// Q3_K's 16 6-bit scales (12 bytes: low 4 bits of scales 0-7 and 8-15 in the low and high
// nibbles of bytes 0-7, their top 2 bits in bytes 8-11), minus 32, as 16 signed bytes.
// Reads exactly the 12 bytes.
inline __m128i q3k_scales(const uint8_t* s) {
    int64_t lo8;
    int32_t hi4;
    std::memcpy(&lo8, s, 8);
    std::memcpy(&hi4, s + 8, 4);
    const __m128i v = _mm_cvtsi64_si128(lo8), m4 = _mm_set1_epi8(0x0F);
    // Low bits: [bytes 0-7 & 15, bytes 0-7 >> 4].
    const __m128i low =
        _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    // Top bits: 32-bit lane k takes bits 2k, 2k + 1 of each of bytes 8-11.
    const __m128i t = _mm_srlv_epi32(_mm_set1_epi32(hi4), _mm_setr_epi32(0, 2, 4, 6));
    const __m128i top = _mm_slli_epi16(_mm_and_si128(t, _mm_set1_epi8(3)), 4);
    return _mm_sub_epi8(_mm_or_si128(low, top), _mm_set1_epi8(32));
}
inline void unpack_half(const BlockQ2_K& b, int h, __m256i u[4]) {
    const __m256i q = _mm256_loadu_si256((const __m256i*)(b.qs + 32 * h));
    for (int j = 0; j < 4; ++j)
        u[j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
}
// Eight byte-sized K-quant sub-block scales (one per row, the low 8 bytes of sc8) as
// vpmaddwd factors: scale r in both 16-bit halves of lane r.
inline __m256i k_scale_pairs(__m128i sc8) {
    const __m256i w = _mm256_cvtepu8_epi32(sc8);
    return _mm256_or_si256(w, _mm256_slli_epi32(w, 16));
}

// Q5_K_R8 (quant/repack.h): the fifth bits of group g of a pair, from the qh vector of g's
// half, added as 16 to the bytes of the low (sub-block 2p) and high (2p + 1) nibbles. The
// 16-bit shifts move bits across bytes only below bit 4 or above it, and those are masked.
inline void q5k_r8_add_high(__m256i qh, int g, __m256i& lo, __m256i& hi) {
    __m256i l, h;
    switch (g % 4) {
        case 0:
            l = _mm256_slli_epi16(qh, 4);
            h = _mm256_slli_epi16(qh, 3);
            break;
        case 1:
            l = _mm256_slli_epi16(qh, 2);
            h = _mm256_slli_epi16(qh, 1);
            break;
        case 2:
            l = qh;
            h = _mm256_srli_epi16(qh, 1);
            break;
        default:
            l = _mm256_srli_epi16(qh, 2);
            h = _mm256_srli_epi16(qh, 3);
            break;
    }
    const __m256i m = _mm256_set1_epi8(0x10);
    lo = _mm256_or_si256(lo, _mm256_and_si256(l, m));
    hi = _mm256_or_si256(hi, _mm256_and_si256(h, m));
}

// A Q4_K_R8 / Q5_K_R8 group's 6-bit scales and mins (quant/repack.h) as bytes, in
// registers: sc[h] holds sub-blocks 4h..4h+3 (8 rows each), mn[h] their mins. Stored and
// reloaded 8 bytes at a time instead, the reloads of the wide stores missed store
// forwarding, and the decode kernel read 26 GB/s a core where it had read 42. The 16-bit
// shifts carry bits across bytes only into positions the 0x0F and 0x30 masks clear.
struct KR8Scales {
    __m256i sc[2], mn[2];
};
inline KR8Scales k_r8_scales(const BlockQ4_Kx8& b) {
    const __m256i lo_s = _mm256_loadu_si256((const __m256i*)b.scales_lo);
    const __m256i lo_m = _mm256_loadu_si256((const __m256i*)b.mins_lo);
    const __m256i h = _mm256_loadu_si256((const __m256i*)b.high);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const auto join = [&](__m256i low4, __m256i top2) {
        return _mm256_or_si256(_mm256_and_si256(low4, m4), _mm256_and_si256(top2, m30));
    };
    KR8Scales k;
    k.sc[0] = join(lo_s, _mm256_slli_epi16(h, 4));
    k.sc[1] = join(_mm256_srli_epi16(lo_s, 4), _mm256_slli_epi16(h, 2));
    k.mn[0] = join(lo_m, h);
    k.mn[1] = join(_mm256_srli_epi16(lo_m, 4), _mm256_srli_epi16(h, 2));
    return k;
}
// Sub-block j's 8 bytes of v (k_r8_scales' sc or mn) in the low half of an xmm.
inline __m128i k_r8_sub(const __m256i v[2], int j) {
    const __m256i q = v[j / 4];
    const __m128i l = (j & 2) ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q);
    return (j & 1) ? _mm_unpackhi_epi64(l, l) : l;
}

// Eight byte-sized mins (one per row, the low 8 bytes of mn8) as floats.
inline __m256 k_mins8(__m128i mn8) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn8)); }

// The high nibble of each byte (the low one is v & 0x0F).
inline __m256i high_nibbles(__m256i v) {
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
}

// An empty asm that claims to change v: stops the compiler from re-associating a chain of
// integer adds into a tree, which needs more registers than AVX2 has and spills (every
// product computed and stored first, then added back from the stack). Pin a local, not an
// array element: GCC then keeps the array in memory, and every use reads it back from the
// stack just after storing it.
inline void pin(__m256i& v) { asm("" : "+x"(v)); }

// Four bytes at p in every 32-bit lane.
inline __m256i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Decode streams each weight row once; a software prefetch ahead of the loads keeps more
// memory requests in flight than the hardware prefetcher alone (rows follow each other,
// so running past a row's end fetches the next one). Distances measured on the 2-core
// EPYC: 2 KiB for the 4- and 6-bit formats; 512 B for Q8_0, whose loop already consumes
// 544 bytes per iteration.
// The `bytes` a loop iteration consumes from p on, `ahead` bytes further on. Non-temporal:
// the weights are read once per step, and on a Zen 5 with AVX-512 (2 threads, TinyLlama
// shapes, 3 interleaved rounds) the hint gave 0-6% more decode t/s than T0 (Q4_0 74-77 ->
// 78-83% of a fixed bound) by not pushing the activations and the KV cache out of L2.
inline void prefetch_ahead(const void* p, int ahead, int bytes) {
    const char* c = static_cast<const char*>(p) + ahead;
    for (int o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_NTA);
}

// In registers: afterwards r[t] holds element t of each of the 8 vectors (lane i from the
// former r[i]).
inline void transpose8_ps(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    __m256 u[8];
    for (int g = 0; g < 8; g += 4) {
        u[g] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
        u[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xEE);
        u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

}  // namespace lcx::cpu
