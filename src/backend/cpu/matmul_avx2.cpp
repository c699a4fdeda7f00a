// AVX2 + FMA + F16C matrix products: the float formats, the direct decode kernels of the
// common quantized formats (one or two activation rows) and the table that picks, per
// weight type, these or the interleaved panels of gemm_avx2.cpp (many activation rows).
// Byte products use vpmaddubsw + vpmaddwd. vpmaddubsw saturates at 16 bits, so only
// weights of at most 6 bits use the unsigned-offset trick; Q8_0 uses |w| x sign(q_x, w)
// instead (|q_x| <= 127 and |w| <= 128 cannot saturate).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/gemm_avx2.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/math_avx2.h"
#include "backend/cpu/packed_rows.h"
#include "backend/cpu/tile_rows.h"
#include "common/error.h"
#include "common/fp16.h"
#include "quant/blocks.h"
#include "quant/repack.h"

namespace lcx::cpu {

namespace {

// F16C conversion: exact, as fp16_to_fp32.
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// The 6-bit scales and mins of a Q4_K/Q5_K super-block: byte j of sc / mn is scale / min j.
inline void k4_scales64(const uint8_t* s, uint64_t& sc, uint64_t& mn) {
    uint8_t a[8], b[8];
    get_scales_mins_k4(s, a, b);
    std::memcpy(&sc, a, 8);
    std::memcpy(&mn, b, 8);
}

// ---- decode-shaped products (few activation rows): direct dot products ------------------
// With one or two activation rows there is nothing to amortize an unpacked buffer over, so
// these kernels read each weight block once straight into registers. Integer block sums
// of 8 blocks are reduced into one vector (one lane per block) and scaled together, and
// the block scales of 8 legacy blocks are converted together (inserts beat vpgatherdd on
// AMD).

// An fp16 field (at `first`) of 8 consecutive blocks of `stride` bytes, as floats.
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

// Per legacy format: unpack() gives a block's 32 weights as bytes, dot() their integer dot
// product with 32 activation quants (8 lanes), scales() the weight scales of 8 consecutive
// blocks, and finish() the float sum of 8 blocks from those, their 8 integer sums, the
// activation scales dx and sums sx (d_x times the sum of its quants). finish1() is one block.
struct Scales8 {
    __m256 d, m;
};
// A legacy block's quants as 32 bytes: 4 bits, or 5 with the fifth from qh.
struct Bits4 {
    template <class B>
    static __m256i get(const B& x) {
        return nibbles32(x.qs);
    }
};
struct Bits5 {
    template <class B>
    static __m256i get(const B& x) {
        return q5_bits(x);
    }
};
inline __m256i unsigned_dot(__m256i u, const int8_t* q) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i*)q)),
                             _mm256_set1_epi16(1));
}
// Q4_0 and Q5_0: quants 0..2^bits - 1 with the implicit offset kOffset = 2^(bits-1).
template <class Block, class Bits, int kOffset>
struct VOffset {
    using B = Block;
    static constexpr int kPrefetch = 2048;
    static __m256i unpack(const B& x) { return Bits::get(x); }
    static __m256i dot(__m256i u, const int8_t* q) { return unsigned_dot(u, q); }
    static Scales8 scales(const B* x8) {
        return {block_scales8(&x8->d, sizeof(B)), _mm256_setzero_ps()};
    }
    // d_w * (d_x * isum - kOffset * s_x)
    static __m256 finish(const Scales8& w, __m256 isum, __m256 dx, __m256 sx) {
        return _mm256_mul_ps(
            w.d, _mm256_fmadd_ps(dx, isum, _mm256_mul_ps(_mm256_set1_ps(-float(kOffset)), sx)));
    }
    static float finish1(const B& x, int isum, float dx, float sx) {
        return h2f(x.d) * (dx * float(isum) - float(kOffset) * sx);
    }
};
// Q4_1 and Q5_1: a stored min per block.
template <class Block, class Bits>
struct VWithMin {
    using B = Block;
    static constexpr int kPrefetch = 2048;
    static __m256i unpack(const B& x) { return Bits::get(x); }
    static __m256i dot(__m256i u, const int8_t* q) { return unsigned_dot(u, q); }
    static Scales8 scales(const B* x8) {
        return {block_scales8(&x8->d, sizeof(B)), block_scales8(&x8->m, sizeof(B))};
    }
    // d_w * d_x * isum + m_w * s_x
    static __m256 finish(const Scales8& w, __m256 isum, __m256 dx, __m256 sx) {
        return _mm256_fmadd_ps(_mm256_mul_ps(w.d, dx), isum, _mm256_mul_ps(w.m, sx));
    }
    static float finish1(const B& x, int isum, float dx, float sx) {
        return h2f(x.d) * dx * float(isum) + h2f(x.m) * sx;
    }
};
using VQ4_0 = VOffset<BlockQ4_0, Bits4, 8>;
using VQ5_0 = VOffset<BlockQ5_0, Bits5, 16>;
using VQ4_1 = VWithMin<BlockQ4_1, Bits4>;
using VQ5_1 = VWithMin<BlockQ5_1, Bits5>;
// Signed 8-bit weights (Q8_0, and IQ4_NL after its table lookup): |w| x sign(q, w).
inline __m256i signed_dot(__m256i w, const int8_t* q) {
    const __m256i a = _mm256_loadu_si256((const __m256i*)q);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)),
                             _mm256_set1_epi16(1));
}
template <class Block, class Weights>
struct VSigned {
    using B = Block;
    static constexpr int kPrefetch = Weights::kPrefetch;
    static __m256i unpack(const B& x) { return Weights::load(x); }
    static __m256i dot(__m256i w, const int8_t* q) { return signed_dot(w, q); }
    static Scales8 scales(const B* x8) {
        return {block_scales8(&x8->d, sizeof(B)), _mm256_setzero_ps()};
    }
    static __m256 finish(const Scales8& w, __m256 isum, __m256 dx, __m256) {
        return _mm256_mul_ps(w.d, _mm256_mul_ps(dx, isum));
    }
    static float finish1(const B& x, int isum, float dx, float) {
        return h2f(x.d) * (dx * float(isum));
    }
};
struct Q8Weights {
    static constexpr int kPrefetch = 512;
    static __m256i load(const BlockQ8_0& x) { return _mm256_loadu_si256((const __m256i*)x.qs); }
};
struct IQ4NLWeights {
    static constexpr int kPrefetch = 2048;
    static __m256i load(const BlockIQ4_NL& x) {
        const __m256i tbl =
            _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)kvalues_iq4nl));
        return _mm256_shuffle_epi8(tbl, nibbles32(x.qs));
    }
};
using VQ8_0 = VSigned<BlockQ8_0, Q8Weights>;
using VIQ4_NL = VSigned<BlockIQ4_NL, IQ4NLWeights>;

// One weight row against activation rows [c0, c0 + C): each group of 8 blocks is unpacked
// and its scales converted once for all C. Every output is the same sequence of operations
// as with C = 1 (groups of 8 alternate between two accumulators, the last < 8 blocks are
// added one by one), so a row's result does not depend on how many rows share the pass.
template <class V, int C>
void legacy_vec_rows(const typename V::B* x, const ActRows& a, int64_t c0, float* y, size_t ys) {
    const int64_t nb = a.k / 32;
    __m256 acc[C][2];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
    // Blocks [b0, b0 + 8) into accumulator g (a constant, so acc stays in registers).
    auto group = [&](int64_t b0, int g) {
        __m256i u[8];
#pragma GCC unroll 8
        for (int b = 0; b < 8; ++b) u[b] = V::unpack(x[b0 + b]);
        const Scales8 w = V::scales(x + b0);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q_row(c0 + c) + 32 * b0;
            __m256i s[8];
#pragma GCC unroll 8
            for (int b = 0; b < 8; ++b) s[b] = V::dot(u[b], q + 32 * b);
            acc[c][g] =
                _mm256_add_ps(acc[c][g], V::finish(w, _mm256_cvtepi32_ps(reduce8(s)),
                                                   _mm256_loadu_ps(a.d_row(c0 + c) + b0),
                                                   _mm256_loadu_ps(a.s32_row(c0 + c) + b0)));
        }
    };
    int64_t b0 = 0;
    for (; b0 + 16 <= nb; b0 += 16) {
        prefetch_ahead(x + b0, V::kPrefetch, 16 * int(sizeof(x[0])));
        group(b0, 0);
        group(b0 + 8, 1);
    }
    if (b0 + 8 <= nb) {
        group(b0, 0);
        b0 += 8;
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
        const int8_t* q = a.q_row(c0 + c);
        const float* dx = a.d_row(c0 + c);
        const float* sx = a.s32_row(c0 + c);
        float r = hsum(_mm256_add_ps(acc[c][0], acc[c][1]));
        for (int64_t b = b0; b < nb; ++b)
            r += V::finish1(x[b], hsum_i32(V::dot(V::unpack(x[b]), q + 32 * b)), dx[b], sx[b]);
        y[size_t(c0 + c) * ys] = r;
    }
}

template <class V>
void legacy_vec(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    // Row by row: a row is read from memory once, for up to 3 activation rows at a time.
    for (int64_t n = n0; n < n1; ++n) {
        const auto* x = reinterpret_cast<const typename V::B*>(w.row(n));
        int64_t c = 0;
        for (; c + 3 <= a.m; c += 3) legacy_vec_rows<V, 3>(x, a, c, y + n, ys);
        if (a.m - c == 2) legacy_vec_rows<V, 2>(x, a, c, y + n, ys);
        if (a.m - c == 1) legacy_vec_rows<V, 1>(x, a, c, y + n, ys);
    }
}

// Q4_K and Q5_K: per super-block, the integer sum over 8 sub-blocks of scale_j * (u . q) is
// exact in int32; the mins use the activation's per-32 sums. Q5_K adds bit 2j (low
// nibbles) or 2j+1 (high nibbles) of qh as bit 4.
template <class B, bool kQ5>
float k45_vec_row(const B* x, const ActRows& a, int64_t c) {
    const int64_t nsb = a.k / 256;
    const int8_t* q = a.q_row(c);
    const float* dxs = a.d_row(c);
    const float* sx = a.s32_row(c);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        prefetch_ahead(x + sb, 2048, int(sizeof(x[0])));
        uint64_t sc64, mn64;
        k4_scales64(x[sb].scales, sc64, mn64);
        const __m256i sc16 =
            _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sc64))));
        const int8_t* qb = q + sb * 256;
        __m256i sum = _mm256_setzero_si256();
        [[maybe_unused]] __m256i qh;
        if constexpr (kQ5) qh = _mm256_loadu_si256((const __m256i*)x[sb].qh);
        for (int j = 0; j < 4; ++j) {
            const __m256i v = _mm256_loadu_si256((const __m256i*)(x[sb].qs + 32 * j));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = high_nibbles(v);
            if constexpr (kQ5) q5k_add_high(qh, j, lo, hi);
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

// Q6_K, Q3_K and Q2_K: unsigned quants (6-bit with offset 32, 3-bit with offset 4, or
// 2-bit with a min per 16), 8-bit scales per 16 applied in int32. All lay a half
// super-block out as 4 vectors of 32 weights, sub-blocks 8h + 2j and 8h + 2j + 1.
// Q6_K and Q3_K subtract offset x scale x (the activations' integer sum per 16) from the
// integer sum, exactly, as ggml does; Q2_K's mins take a float step with the per-16 sums.
// Against the offset in float (two more FMA chains and their factors), the integer form
// measured 24.5 against 21.4 GB/s for Q6_K (BM_DecodeKernelAvx2, best of 5 rounds).
template <class B>
inline __m128i scales16_of(const B& b) {
    if constexpr (std::is_same_v<B, BlockQ6_K>) {
        return _mm_loadu_si128((const __m128i*)b.scales);
    } else if constexpr (std::is_same_v<B, BlockQ2_K>) {
        return _mm_and_si128(_mm_loadu_si128((const __m128i*)b.scales), _mm_set1_epi8(15));
    } else {
        return q3k_scales(b.scales);
    }
}
// log2 of the quants' offset: Q6_K 32, Q3_K 4; Q2_K has none (a min instead).
template <class B>
constexpr int offset_log2() {
    return std::is_same_v<B, BlockQ6_K> ? 5 : std::is_same_v<B, BlockQ3_K> ? 2 : 0;
}
template <class B>
float k36_vec_row(const B* x, const ActRows& a, int64_t c) {
    const int64_t nsb = a.k / 256;
    const int8_t* q = a.q_row(c);
    const float* dxs = a.d_row(c);
    const float* sx = a.s16_row(c);
    const int16_t* bx = a.b16_row(c);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        prefetch_ahead(x + sb, 2048, int(sizeof(x[0])));
        const B& b = x[sb];
        const __m128i sc8 = scales16_of(b);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const int8_t* qb = q + sb * 256;
        __m256i sum = _mm256_setzero_si256();
        if constexpr (offset_log2<B>() > 0)
            sum = _mm256_sub_epi32(
                sum,
                _mm256_slli_epi32(
                    _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)(bx + 16 * sb))),
                    offset_log2<B>()));
        for (int h = 0; h < 2; ++h) {
            __m256i u[4];
            unpack_half(b, h, u);
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
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b.d) * dxs[sb]), _mm256_cvtepi32_ps(sum), acc);
        if constexpr (std::is_same_v<B, BlockQ2_K>) {
            // dmin x min per 16, against d_x x (sum of the 16 quants).
            const __m128i mn = _mm_and_si128(
                _mm_srli_epi16(_mm_loadu_si128((const __m128i*)b.scales), 4), _mm_set1_epi8(15));
            const __m256 dm = _mm256_set1_ps(h2f(b.dmin));
            const __m256 f0 = _mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn)));
            const __m256 f1 =
                _mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(mn, 8))));
            accm = _mm256_fmadd_ps(f0, _mm256_loadu_ps(sx + sb * 16), accm);
            accm = _mm256_fmadd_ps(f1, _mm256_loadu_ps(sx + sb * 16 + 8), accm);
        }
    }
    return hsum(_mm256_sub_ps(acc, accm));
}

// IQ4_XS: IQ4_NL's table values in 32-weight blocks with a 6-bit scale (minus 32) each,
// applied in int32 as the 16-bit factor of vpmaddwd; one float step per 256 weights.
float iq4xs_vec_row(const BlockIQ4_XS* x, const ActRows& a, int64_t c) {
    const int64_t nsb = a.k / 256;
    const int8_t* q = a.q_row(c);
    const float* dxs = a.d_row(c);
    const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)kvalues_iq4nl));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        prefetch_ahead(x + sb, 2048, int(sizeof(x[0])));
        const BlockIQ4_XS& b = x[sb];
        const int8_t* qb = q + sb * 256;
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) |
                           (((b.scales_h >> (2 * ib)) & 3) << 4);
            const __m256i w = _mm256_shuffle_epi8(tbl, nibbles32(b.qs + 16 * ib));
            const __m256i xv = _mm256_loadu_si256((const __m256i*)(qb + 32 * ib));
            const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xv, w));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16(int16_t(ls - 32))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b.d) * dxs[sb]), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum(acc);
}

template <class B, float (*Row)(const B*, const ActRows&, int64_t)>
void k_vec(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    for (int64_t n = n0; n < n1; ++n)  // row-major, as legacy_vec
        for (int64_t c = 0; c < a.m; ++c)
            y[size_t(c) * ys + size_t(n)] = Row(reinterpret_cast<const B*>(w.row(n)), a, c);
}

// ---- packed weights (quant/repack.h): 8 rows at a time, a lane per row -------------------
// A block needs no horizontal sum and its 8 scales are one load. Per block the integer and
// float steps are those of the panels' tile (gemm_avx2.cpp) in the same order, so a row's
// result does not depend on whether a decode step or a prompt computes it.

// Prefetch distance of the packed decode: 11008 x 4096 from memory on 2 threads measured
// 18-27 GB/s at 4 KiB, 15-22 at 2 KiB and 15-17 without.
constexpr int kR8Prefetch = 4096;

// Each packed format P: its Block, kBlockK weights per block, and rows<C>(), a group of
// 8 packed rows against activation rows [c0, c0 + C).
template <class P, int C>
void legacy_packed_rows(const typename P::Block* x, const ActRows& a, int64_t c0, float* y,
                        size_t ys);

// Activation rows [c0, c0 + C)'s arrays, looked up once per pass: through ActRows, the
// loops recomputed every row's offsets (a load of the kind, a division) every block.
template <int C>
struct ActPtrs {
    const int8_t* q[C];
    const float* d[C];
    const float* s32[C];
    const int32_t* xs[C];
    ActPtrs(const ActRows& a, int64_t c0) {
        for (int c = 0; c < C; ++c) {
            q[c] = a.q_row(c0 + c);
            d[c] = a.d_row(c0 + c);
            s32[c] = a.s32_row(c0 + c);
            xs[c] = a.xs.empty() ? nullptr : a.xs_row(c0 + c);
        }
    }
};

// The legacy packed formats: blocks of 32, each format P supplying only sums<C>(), the
// integer sums of one block; legacy_packed_rows adds the float step.
template <class P, class B>
struct LegacyPacked {
    using Block = B;
    static constexpr int kBlockK = 32;
    template <int C>
    static void rows(const Block* x, const ActRows& a, int64_t c0, float* y, size_t ys) {
        legacy_packed_rows<P, C>(x, a, c0, y, ys);
    }
};

// Q4_0_R8: 8 groups of 4 nibbles summed in 16 bits (2 products of at most 15 x 127 each),
// minus 8 times the activations' integer block sum.
struct PackedQ4_0 : LegacyPacked<PackedQ4_0, BlockQ4_0x8> {
    template <int C>
    static void sums(const Block& x, const ActPtrs<C>& a, int64_t b, __m256i s[C]) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
        __m256i u[8];
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const __m256i raw = _mm256_loadu_si256((const __m256i*)x.qs[v]);
            u[v] = _mm256_and_si256(raw, m4);
            u[v + 4] = high_nibbles(raw);
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q[c] + 32 * b;
            __m256i s16 = _mm256_maddubs_epi16(u[0], bcast4(q));
#pragma GCC unroll 8
            for (int g = 1; g < 8; ++g)
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(u[g], bcast4(q + 4 * g)));
            s[c] = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones),
                                    _mm256_slli_epi32(_mm256_set1_epi32(a.xs[c][b]), 3));
        }
    }
};

// Q8_0_R8: signed weights as |w| x sign(x, w), each group widened to 32 bits (two
// products of 128 x 127 fill 16 bits).
struct PackedQ8_0 : LegacyPacked<PackedQ8_0, BlockQ8_0x8> {
    template <int C>
    static void sums(const Block& x, const ActPtrs<C>& a, int64_t b, __m256i s[C]) {
        const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
            const __m256i w = _mm256_loadu_si256((const __m256i*)x.qs[g]);
            const __m256i aw = _mm256_abs_epi8(w);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                const __m256i xg = bcast4(a.q[c] + 32 * b + 4 * g);
                const __m256i t =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xg, w)), ones);
                s[c] = g ? _mm256_add_epi32(s[c], t) : t;
            }
        }
    }
};

// acc[c] += float(s[c]) * (ws * d_x), with activation row c0 + c's scale i: the panels'
// float step.
template <int C>
inline void packed_float_step(__m256 acc[C], const __m256i s[C], __m256 ws, const ActPtrs<C>& a,
                              int64_t i) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]),
                                 _mm256_mul_ps(ws, _mm256_broadcast_ss(a.d[c] + i)), acc[c]);
}

// The legacy packed formats: per block, the integer sums and one float step with the 8
// rows' scales.
template <class P, int C>
void legacy_packed_rows(const typename P::Block* x, const ActRows& a, int64_t c0, float* y,
                        size_t ys) {
    const int64_t nb = a.k / 32;
    const ActPtrs<C> ap(a, c0);
    __m256 acc[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        prefetch_ahead(x + b, kR8Prefetch, int(sizeof(x[b])));
        __m256i s[C];
        P::template sums<C>(x[b], ap, b, s);
        packed_float_step<C>(acc, s, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)x[b].d)), ap,
                             b);
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + size_t(c0 + c) * ys, acc[c]);
}

// Q4_K_R8 and Q5_K_R8 (Blk): per super-block the sub-blocks' integer sums times their
// scales in int32, one float step with d, and the 8 mins in float. Q5_K_R8 adds each
// weight's fifth bit as 16 before the products.
template <class Blk, int C>
void k45_packed_rows(const Blk* x, const ActRows& a, int64_t c0, float* y, size_t ys) {
    const int64_t nsb = a.k / 256;
    const ActPtrs<C> ap(a, c0);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 acc[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        const Blk& blk = x[sb];
        prefetch_ahead(&blk, kR8Prefetch, int(sizeof(Blk)));
        const KR8Scales ks = k_r8_scales(blk);
        __m256i s[C];
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
            __m256i lo16[C], hi16[C];
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                const __m256i raw = _mm256_loadu_si256((const __m256i*)blk.qs[p][g]);
                __m256i lo = _mm256_and_si256(raw, m4), hi = high_nibbles(raw);
                if constexpr (std::is_same_v<Blk, BlockQ5_Kx8>)
                    q5k_r8_add_high(_mm256_loadu_si256((const __m256i*)blk.qh[p][g / 4]), g, lo,
                                    hi);
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const int8_t* q = ap.q[c] + 256 * sb + 64 * p + 4 * g;
                    const __m256i tl = _mm256_maddubs_epi16(lo, bcast4(q));
                    const __m256i th = _mm256_maddubs_epi16(hi, bcast4(q + 32));
                    __m256i l = g ? _mm256_add_epi16(lo16[c], tl) : tl;
                    __m256i u = g ? _mm256_add_epi16(hi16[c], th) : th;
                    pin(l);
                    pin(u);
                    lo16[c] = l;
                    hi16[c] = u;
                }
            }
            const __m256i sl = k_scale_pairs(k_r8_sub(ks.sc, 2 * p));
            const __m256i sh = k_scale_pairs(k_r8_sub(ks.sc, 2 * p + 1));
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                const __m256i t = _mm256_add_epi32(_mm256_madd_epi16(lo16[c], sl),
                                                   _mm256_madd_epi16(hi16[c], sh));
                s[c] = p ? _mm256_add_epi32(s[c], t) : t;
            }
        }
        packed_float_step<C>(acc, s, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk.d)), ap,
                             sb);
        const __m256 negdm =
            _mm256_xor_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk.dmin)), sign);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
            const __m256 wm = _mm256_mul_ps(negdm, k_mins8(k_r8_sub(ks.mn, j)));
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c)
                acc[c] = _mm256_fmadd_ps(wm, _mm256_broadcast_ss(ap.s32[c] + 8 * sb + j), acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + size_t(c0 + c) * ys, acc[c]);
}

template <class Blk>
struct PackedK45 {
    using Block = Blk;
    static constexpr int kBlockK = 256;
    template <int C>
    static void rows(const Block* x, const ActRows& a, int64_t c0, float* y, size_t ys) {
        k45_packed_rows<Blk, C>(x, a, c0, y, ys);
    }
};
using PackedQ4_K = PackedK45<BlockQ4_Kx8>;
using PackedQ5_K = PackedK45<BlockQ5_Kx8>;

// packed_vec (packed_rows.h) drives these kernels, a group of 8 rows at a time. (Two groups
// per pass for one activation row, sharing each broadcast, measured 40% faster for Q4_K_R8
// from L2 but 5-15% slower end to end: decode streams from memory, and two streams a group
// apart read slower than one.)

// kVecMaxM (gemm_avx2.h) decides between the direct kernels and the panels.
template <MatmulFn Vec, DType T>
constexpr MatmulFn vec_or_gemm = vec_or_panels<Vec, gemm_avx2, T>;

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
    // The next R rows, which lie right after these: a row of F16 at K = 2048 is one 4 KiB
    // page, and the hardware prefetcher does not cross pages, so without this every row
    // starts with a miss.
    const size_t next = size_t(R) * row_bytes(w.type(), k);
    for (int64_t j = 0; j < k8; j += 8) {
        if (j % (64 / sizeof(typename W::T)) == 0)
            for (int r = 0; r < R; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(wr[r] + j) + next, _MM_HINT_T0);
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

// Many activation rows: 16 weight rows are converted once to an f32 panel laid out
// [k][16], and a register tile of 16 rows x 6 activation rows (12 accumulators, a lane
// per weight row: no horizontal sums) walks it, broadcasting one activation value per
// FMA pair. Per k a tile loads 64 bytes of panel (from L2) and 6 activation floats,
// where the dot-product tiles above reload 4 weight rows and 3 activation rows (up to
// 224 bytes) for 12 FMAs, more than L2 delivers.
constexpr int kFloatPanelCols = 6;

// Rows [n, n + nr) of w (nr <= 16; the rest zero) as an f32 panel P[k][16].
template <class W>
void build_float_panel(const Tensor& w, int64_t n, int nr, int64_t k, float* P) {
    const typename W::T* row[16];
    for (int r = 0; r < 16; ++r)
        row[r] = r < nr ? reinterpret_cast<const typename W::T*>(w.row(n + r)) : nullptr;
    int64_t j = 0;
    for (; j + 8 <= k; j += 8)
        for (int h = 0; h < 2; ++h) {
            __m256 v[8];
            for (int i = 0; i < 8; ++i)
                v[i] = row[8 * h + i] ? W::load(row[8 * h + i] + j) : _mm256_setzero_ps();
            transpose8_ps(v);
            for (int t = 0; t < 8; ++t) _mm256_storeu_ps(P + (j + t) * 16 + 8 * h, v[t]);
        }
    for (; j < k; ++j)
        for (int r = 0; r < 16; ++r) P[j * 16 + r] = row[r] ? W::one(row[r] + j) : 0.0f;
}

template <int C>
void float_panel_tile(const float* P, int64_t k, const ActRows& a, int64_t c0, float* y, size_t ys,
                      int64_t n, int nr) {
    const float* x[C];
    __m256 acc0[C], acc1[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
        x[c] = a.f_row(c0 + c);
        acc0[c] = acc1[c] = _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < k; ++j) {
        const __m256 p0 = _mm256_loadu_ps(P + j * 16), p1 = _mm256_loadu_ps(P + j * 16 + 8);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
            const __m256 b = _mm256_broadcast_ss(x[c] + j);
            acc0[c] = _mm256_fmadd_ps(p0, b, acc0[c]);
            acc1[c] = _mm256_fmadd_ps(p1, b, acc1[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
        float* out = y + size_t(c0 + c) * ys + size_t(n);
        alignas(32) float t[16];
        _mm256_store_ps(t, acc0[c]);
        _mm256_store_ps(t + 8, acc1[c]);
        std::memcpy(out, t, size_t(nr) * sizeof(float));
    }
}

// kFloatDotMaxM (gemm_avx2.h) decides between the dot-product tiles and the panels.
template <class W>
void float_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    if (a.m <= kFloatDotMaxM) {
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) float_cols<W, 4>(w, n, a, y, ys);
        for (; n < n1; ++n) float_cols<W, 1>(w, n, a, y, ys);
        return;
    }
    thread_local std::vector<float> panel;
    panel.resize(size_t(a.k) * 16);
    constexpr int C = kFloatPanelCols;
    for (int64_t n = n0; n < n1; n += 16) {
        const int nr = int(std::min<int64_t>(16, n1 - n));
        build_float_panel<W>(w, n, nr, a.k, panel.data());
        int64_t c = 0;
        for (; c + C <= a.m; c += C) float_panel_tile<C>(panel.data(), a.k, a, c, y, ys, n, nr);
        with_rows<C - 1>(int(a.m - c), [&](auto rows) {
            float_panel_tile<rows()>(panel.data(), a.k, a, c, y, ys, n, nr);
        });
    }
}

}  // namespace

void build_float_panel_avx2(const Tensor& w, int64_t n, int nr, int64_t k, float* P) {
    switch (w.type()) {
        case DType::F32:
            return build_float_panel<WF32>(w, n, nr, k, P);
        case DType::F16:
            return build_float_panel<WF16>(w, n, nr, k, P);
        case DType::BF16:
            return build_float_panel<WBF16>(w, n, nr, k, P);
        default:
            throw Error("float panel: not a float weight: " + std::string(dtype_name(w.type())));
    }
}

namespace {

// ---- activation conversion -------------------------------------------------------------
// Q8_0/Q8_1 and F16 rows with the reference's exact arithmetic: the same amax, d = amax/127,
// id = 1/d, products x*id, round half away from zero (trunc(v + copysign(0.5 - 2^-25, v))
// equals std::round for |v| < 2^23), and IEEE fp16 rounding by F16C.
// Q8_K, as quantize_row_q8_K: the scale comes from the first element of largest magnitude
// (its sign included), quants are nearest_int(iscale * x) (round half to even, as
// vcvtps2dq in the default rounding mode) capped at 127.
void act_row_q8k_avx2(ActRows& a, const float* x, int64_t i) {
    const int64_t k = a.k, nsb = k / 256;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t sb = 0; sb < nsb; ++sb) {
        const float* xb = x + 256 * sb;
        int8_t* q = a.q.data() + i * k + 256 * sb;
        __m256 mx = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8)
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        float* s16 = a.s16.data() + (i * k) / 16 + 16 * sb;
        float* s32 = a.s32.data() + (i * k) / 32 + 8 * sb;
        int16_t* b16 = a.b16.data() + (i * k) / 16 + 16 * sb;
        if (amax == 0.0f) {
            std::memset(q, 0, 256);
            a.d[size_t(i * nsb + sb)] = 0.0f;
            std::fill(s16, s16 + 16, 0.0f);
            std::fill(b16, b16 + 16, int16_t(0));
            std::fill(s32, s32 + 8, 0.0f);
            continue;
        }
        int first = 0;
        while (std::fabs(xb[first]) != amax) ++first;
        const float iscale = -127.0f / xb[first];
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi32(127);
        int sums[16];
        for (int j = 0; j < 256; j += 32) {
            __m256i n[4];
            for (int t = 0; t < 4; ++t)
                n[t] = _mm256_min_epi32(
                    _mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(xb + j + 8 * t))), cap);
            sums[j / 16] = hsum_i32(_mm256_add_epi32(n[0], n[1]));
            sums[j / 16 + 1] = hsum_i32(_mm256_add_epi32(n[2], n[3]));
            const __m256i p16 =
                _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3]));
            _mm256_storeu_si256(
                (__m256i*)(q + j),
                _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
        const float d = 1 / iscale;
        a.d[size_t(i * nsb + sb)] = d;
        for (int j = 0; j < 16; ++j) {
            b16[j] = int16_t(sums[j]);
            s16[j] = d * float(b16[j]);
        }
        for (int j = 0; j < 8; ++j)
            s32[j] = d * float(int16_t(sums[2 * j]) + int16_t(sums[2 * j + 1]));
    }
}

bool act_row_avx2(ActRows& a, const float* x, int64_t i) {
    const int64_t k = a.k;
    if (a.kind == ActKind::Q8_K) {
        act_row_q8k_avx2(a, x, i);
        return true;
    }
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
        a.xs[size_t(i * nb + b)] = sum;
    }
    return true;
}

KernelTable make_table() {
    KernelTable t;
    t.act_row = act_row_avx2;
    t.act_tiles = act_tiles_avx2;
    t.swiglu = swiglu_avx2;
    auto set = [&](DType d, MatmulFn f) { t.matmul[uint32_t(d)] = f; };
    set(DType::F32, float_matmul<WF32>);
    set(DType::F16, float_matmul<WF16>);
    set(DType::BF16, float_matmul<WBF16>);
    set(DType::Q4_1, vec_or_gemm<legacy_vec<VQ4_1>, DType::Q4_1>);
    set(DType::IQ4_NL, vec_or_gemm<legacy_vec<VIQ4_NL>, DType::IQ4_NL>);
    set(DType::Q4_0, vec_or_gemm<legacy_vec<VQ4_0>, DType::Q4_0>);
    set(DType::Q4_0_R8, vec_or_gemm<packed_vec<PackedQ4_0>, DType::Q4_0_R8>);
    set(DType::Q8_0_R8, vec_or_gemm<packed_vec<PackedQ8_0>, DType::Q8_0_R8>);
    set(DType::Q4_K_R8, vec_or_gemm<packed_vec<PackedQ4_K>, DType::Q4_K_R8>);
    set(DType::Q5_K_R8, vec_or_gemm<packed_vec<PackedQ5_K>, DType::Q5_K_R8>);
    set(DType::Q8_0, vec_or_gemm<legacy_vec<VQ8_0>, DType::Q8_0>);
    set(DType::Q4_K, vec_or_gemm<k_vec<BlockQ4_K, k45_vec_row<BlockQ4_K, false>>, DType::Q4_K>);
    set(DType::Q5_K, vec_or_gemm<k_vec<BlockQ5_K, k45_vec_row<BlockQ5_K, true>>, DType::Q5_K>);
    set(DType::Q5_0, vec_or_gemm<legacy_vec<VQ5_0>, DType::Q5_0>);
    set(DType::Q5_1, vec_or_gemm<legacy_vec<VQ5_1>, DType::Q5_1>);
    set(DType::Q6_K, vec_or_gemm<k_vec<BlockQ6_K, k36_vec_row<BlockQ6_K>>, DType::Q6_K>);
    set(DType::Q3_K, vec_or_gemm<k_vec<BlockQ3_K, k36_vec_row<BlockQ3_K>>, DType::Q3_K>);
    set(DType::Q2_K, vec_or_gemm<k_vec<BlockQ2_K, k36_vec_row<BlockQ2_K>>, DType::Q2_K>);
    set(DType::IQ4_XS, vec_or_gemm<k_vec<BlockIQ4_XS, iq4xs_vec_row>, DType::IQ4_XS>);
    return t;
}

}  // namespace

const KernelTable& kernels_avx2() {
    static const KernelTable t = make_table();
    return t;
}

}  // namespace lcx::cpu
