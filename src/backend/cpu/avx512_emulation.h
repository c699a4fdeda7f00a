// Force-included into the *_avx512.cpp files when CMake's LCX_EMULATE_AVX512 is on: the
// AVX-512 intrinsics then come from SIMDe (Debian's libsimde-dev), which implements them
// with AVX2, so the AVX-512 kernels run and are tested on machines without AVX-512. Only
// for tests: the emulated kernels are several times slower than the AVX2 ones.
#pragma once

#include <immintrin.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cmath>
#include <cstdint>

// Missing from SIMDe 0.7.4, written element by element. The masked loads read only the
// selected elements, as the instructions do (the others may lie past the end of a buffer).
#define _mm512_zextsi256_si512(a) simde_mm512_inserti64x4(simde_mm512_setzero_si512(), (a), 0)

inline simde__m512 lcx_emulated_zextps256_ps512(__m256 a) {
    float t[16] = {};
    _mm256_storeu_ps(t, a);
    return simde_mm512_loadu_ps(t);
}
#define _mm512_zextps256_ps512(a) lcx_emulated_zextps256_ps512(a)

inline simde__m512 lcx_emulated_cvtepi32_ps(simde__m512i a) {
    int32_t i[16];
    float f[16];
    simde_mm512_storeu_si512(i, a);
    for (int k = 0; k < 16; ++k) f[k] = float(i[k]);  // round to nearest, as vcvtdq2ps
    return simde_mm512_loadu_ps(f);
}
#define _mm512_cvtepi32_ps(a) lcx_emulated_cvtepi32_ps(a)

inline simde__m512i lcx_emulated_cvtps_epi32(simde__m512 a) {
    float f[16];
    int32_t i[16];
    simde_mm512_storeu_ps(f, a);
    for (int k = 0; k < 16; ++k) i[k] = int32_t(std::lrint(f[k]));  // nearest, as vcvtps2dq
    return simde_mm512_loadu_si512(i);
}
#define _mm512_cvtps_epi32(a) lcx_emulated_cvtps_epi32(a)

// Widens 16 elements of type From (at p) to int32.
template <class From>
inline simde__m512i lcx_emulated_widen(const void* p) {
    const From* v = static_cast<const From*>(p);
    int32_t t[16];
    for (int k = 0; k < 16; ++k) t[k] = int32_t(v[k]);
    return simde_mm512_loadu_si512(t);
}
inline simde__m512i lcx_emulated_cvtepi8_epi32(__m128i a) {
    int8_t b[16];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b), a);
    return lcx_emulated_widen<int8_t>(b);
}
inline simde__m512i lcx_emulated_cvtepu8_epi32(__m128i a) {
    uint8_t b[16];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b), a);
    return lcx_emulated_widen<uint8_t>(b);
}
inline simde__m512i lcx_emulated_cvtepu16_epi32(__m256i a) {
    uint16_t h[16];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h), a);
    return lcx_emulated_widen<uint16_t>(h);
}
#define _mm512_cvtepi8_epi32(a) lcx_emulated_cvtepi8_epi32(a)
#define _mm512_cvtepu8_epi32(a) lcx_emulated_cvtepu8_epi32(a)
#define _mm512_cvtepu16_epi32(a) lcx_emulated_cvtepu16_epi32(a)

inline simde__m512i lcx_emulated_srai_epi32(simde__m512i a, int n) {
    int32_t t[16];
    simde_mm512_storeu_si512(t, a);
    for (int k = 0; k < 16; ++k) t[k] >>= n;  // arithmetic shift (C++20)
    return simde_mm512_loadu_si512(t);
}
#define _mm512_srai_epi32(a, n) lcx_emulated_srai_epi32((a), (n))

// F16C on each half.
inline simde__m512 lcx_emulated_cvtph_ps(__m256i a) {
    float f[16];
    _mm256_storeu_ps(f, _mm256_cvtph_ps(_mm256_castsi256_si128(a)));
    _mm256_storeu_ps(f + 8, _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1)));
    return simde_mm512_loadu_ps(f);
}
#define _mm512_cvtph_ps(a) lcx_emulated_cvtph_ps(a)

// The same tree of additions as GCC's _mm512_reduce_add_ps, so the bits match.
inline float lcx_emulated_reduce_add_ps(simde__m512 a) {
    float v[16], t[8], u[4];
    simde_mm512_storeu_ps(v, a);
    for (int k = 0; k < 8; ++k) t[k] = v[k + 8] + v[k];
    for (int k = 0; k < 4; ++k) u[k] = t[k + 4] + t[k];
    return (u[0] + u[2]) + (u[1] + u[3]);
}
#define _mm512_reduce_add_ps(a) lcx_emulated_reduce_add_ps(a)

// The 16 elements of p selected by k, the others zero.
template <class T>
inline void lcx_emulated_masked_copy(unsigned k, const void* p, T (&t)[16]) {
    for (int i = 0; i < 16; ++i) t[i] = (k >> i) & 1 ? static_cast<const T*>(p)[i] : T(0);
}
inline simde__m512 lcx_emulated_maskz_loadu_ps(simde__mmask16 k, const void* p) {
    float t[16];
    lcx_emulated_masked_copy(k, p, t);
    return simde_mm512_loadu_ps(t);
}
#define _mm512_maskz_loadu_ps(k, p) lcx_emulated_maskz_loadu_ps((k), (p))

inline simde__m256i lcx_emulated_maskz_loadu_epi16(simde__mmask16 k, const void* p) {
    int16_t t[16];
    lcx_emulated_masked_copy(k, p, t);
    return simde_mm256_loadu_si256(t);
}
#define _mm256_maskz_loadu_epi16(k, p) lcx_emulated_maskz_loadu_epi16((k), (p))

// Stores the elements of a selected by k; the others of p are left untouched.
inline void lcx_emulated_mask_storeu_ps(void* p, simde__mmask16 k, simde__m512 a) {
    float t[16];
    simde_mm512_storeu_ps(t, a);
    for (int i = 0; i < 16; ++i)
        if ((k >> i) & 1) static_cast<float*>(p)[i] = t[i];
}
#define _mm512_mask_storeu_ps(p, k, a) lcx_emulated_mask_storeu_ps((p), (k), (a))

// 16 floats to f16 (F16C on each half), rounding as `rounding` says.
#define _mm512_cvtps_ph(a, rounding) lcx_emulated_cvtps_ph<(rounding)>(a)
template <int kRounding>
inline __m256i lcx_emulated_cvtps_ph(simde__m512 a) {
    float f[16];
    simde_mm512_storeu_ps(f, a);
    const __m128i lo = _mm256_cvtps_ph(_mm256_loadu_ps(f), kRounding);
    const __m128i hi = _mm256_cvtps_ph(_mm256_loadu_ps(f + 8), kRounding);
    return _mm256_set_m128i(hi, lo);
}

// Two vectors of 16 floats to 32 bf16 (b's in the low half), as vcvtne2ps2bf16: nearest
// even, NaNs quieted, denormal inputs read as zero.
inline simde__m512bh lcx_emulated_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
    uint32_t u[32];
    simde_mm512_storeu_ps(u, b);
    simde_mm512_storeu_ps(u + 16, a);
    uint16_t h[32];
    for (int i = 0; i < 32; ++i) {
        uint32_t x = u[i];
        if ((x & 0x7f800000u) == 0) x &= 0x80000000u;
        h[i] = (x & 0x7fffffffu) > 0x7f800000u ? uint16_t((x >> 16) | 64)
                                               : uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
    }
    simde__m512bh r;
    static_assert(sizeof(r) == sizeof(h));
    __builtin_memcpy(&r, h, sizeof(h));
    return r;
}
#define _mm512_cvtne2ps_pbh(a, b) lcx_emulated_cvtne2ps_pbh((a), (b))

// The 32 elements of p selected by k, the others zero (only the selected ones are read).
inline simde__m512i lcx_emulated_maskz_loadu_epi16x32(uint32_t k, const void* p) {
    int16_t t[32];
    for (int i = 0; i < 32; ++i) t[i] = (k >> i) & 1 ? static_cast<const int16_t*>(p)[i] : 0;
    return simde_mm512_loadu_si512(t);
}
#define _mm512_maskz_loadu_epi16(k, p) lcx_emulated_maskz_loadu_epi16x32(uint32_t(k), (p))
