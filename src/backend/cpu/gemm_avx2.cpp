// AVX2 prompt-shaped products (many activation rows) for every quantized weight type.
//
// Eight weight rows are unpacked once into an interleaved panel: for every 32-weight block
// and every group of 4 weights, one 32-byte vector holds those 4 bytes of each of the 8
// rows. A group's 4 activation quants are broadcast to all lanes, so one vpmaddubsw gives
// partial dot products of 8 rows at once and every lane of the accumulators belongs to
// one row: no horizontal sums, and a block's 8 row scales are applied with one multiply.
// A tile takes two panels (16 rows) and 4 activation rows: each broadcast group feeds a
// product with both panels, and each panel vector is reused by the 4 rows. The tiles'
// activations are interleaved the same way once per input (act_tiles_avx2), so a tile
// reads one sequential stream.
//
// Integer sums stay exact: unsigned weights of at most 4 bits add 8 groups in 16 bits
// (8 x 2 x 15 x 127 < 2^15), 5-bit ones 4 groups and 6-bit ones 2; signed 8-bit weights use
// |w| x sign(x, w) and widen every group. The K-quants and IQ4_XS then multiply a block's
// int32 sums by its sub-block scale and sum the 8 blocks of a super-block before one float
// step; Q4_0 and Q5_0 subtract their weight offset in int32 (see super_sums and
// offset_shift). A row's result is computed by the same operations whichever panel it
// falls in (missing rows are zero-filled), so it does not depend on how the rows were
// split between threads.
#include "backend/cpu/gemm_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/gemm_panel.h"
#include "backend/cpu/math_avx2.h"
#include "backend/cpu/tile_rows.h"
#include "common/error.h"
#include "quant/blocks.h"
#include "quant/repack.h"

namespace lcx::cpu {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

struct alignas(32) V32 {
    uint8_t b[32];
};

// One weight row unpacked to natural order: 32 unsigned (or signed) bytes per block, the
// float scale per block, the min per block (or per 16 weights) and, for formats with
// 16-weight sub-block scales, the integer scale per 16.
struct RowUnp {
    std::vector<V32> u;
    std::vector<float> ws, wm;
    std::vector<int16_t> sc;
    void resize(int64_t nb) {
        u.resize(size_t(nb));
        ws.resize(size_t(nb));
        wm.resize(size_t(nb) * 2);
        sc.resize(size_t(nb) * 2);
    }
    __m256i* v() { return reinterpret_cast<__m256i*>(u.data()); }
};

// Eight rows interleaved (see the top of the file).
struct Panel {
    int64_t nb = 0;
    std::vector<V32> qs;    // [block][group]: lanes = rows (|w| for signed formats)
    std::vector<V32> sg;    // signed formats: w itself, for the sign trick
    std::vector<float> ws;  // [block][row]
    std::vector<float> wm;  // [block][row] or [block][half][row]
    std::vector<V32> sc;    // [block][half]: int16 scale of row r in lanes 2r and 2r+1
    void resize(int64_t n) {
        nb = n;
        qs.resize(size_t(n) * 8);
        sg.resize(size_t(n) * 8);
        ws.resize(size_t(n) * 8);
        wm.resize(size_t(n) * 16);
        sc.resize(size_t(n) * 2);
    }
    const __m256i* q(int64_t b) const {
        return reinterpret_cast<const __m256i*>(qs.data()) + 8 * b;
    }
    const __m256i* s(int64_t b) const {
        return reinterpret_cast<const __m256i*>(sg.data()) + 8 * b;
    }
};

enum class Min { None, Per32, Per16 };

// The K-quants and IQ4_XS have integer sub-block scales and one float scale d per
// 256-weight super-block: a block's integer sum is multiplied by its sub-block scale in
// int32 and the super-block's 8 blocks are summed before the one float step with d (as
// ggml does), instead of a float step per block.
template <class S>
constexpr bool super_sums() {
    return S::kDxShift == 3;
}

// Q4_0 and Q5_0 store q = w + 2^(bits-1) (kOffsetShift = bits - 1): the panels subtract
// 2^(bits-1) times the activations' integer block sum from the integer sum, exactly, as
// ggml does, instead of a float min term per block.
template <class S>
constexpr int offset_shift() {
    if constexpr (requires { S::kOffsetShift; })
        return S::kOffsetShift;
    else
        return 0;
}

// Block b of an unpacked Q4_K/Q5_K/IQ4_XS row: d and the block's 6-bit scale (in the slot
// of the block's first half; the panel reads only that one).
inline void set_int_scale(RowUnp& r, int64_t b, float d, int sc) {
    r.ws[size_t(b)] = d;
    r.sc[size_t(2 * b)] = int16_t(sc);
}

// ---- per-type row unpacking ------------------------------------------------------------

struct GQ8_0 {
    using B = BlockQ8_0;
    static constexpr bool kSigned = true, kScale16 = false;
    static constexpr int kDxShift = 0;
    static constexpr Min kMin = Min::None;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const B* x = static_cast<const B*>(src);
        for (int64_t b = 0; b < nb; ++b) {
            r.v()[b] = _mm256_loadu_si256((const __m256i*)x[b].qs);
            r.ws[size_t(b)] = h2f(x[b].d);
        }
    }
};

struct GQ4_K {
    using B = BlockQ4_K;
    static constexpr bool kSigned = false, kScale16 = false;
    static constexpr int kG16 = 8, kDxShift = 3;
    static constexpr bool kShuffleX = true;
    static constexpr Min kMin = Min::Per32;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const B* x = static_cast<const B*>(src);
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            uint8_t sc[8], mn[8];
            get_scales_mins_k4(x[sb].scales, sc, mn);
            __m256i* u = r.v() + 8 * sb;
            for (int j = 0; j < 4; ++j) {
                const __m256i v = _mm256_loadu_si256((const __m256i*)(x[sb].qs + 32 * j));
                u[2 * j] = _mm256_and_si256(v, m4);
                u[2 * j + 1] = high_nibbles(v);
            }
            const float d = h2f(x[sb].d), dm = h2f(x[sb].dmin);
            for (int j = 0; j < 8; ++j) {
                set_int_scale(r, 8 * sb + j, d, sc[j]);
                r.wm[size_t(8 * sb + j)] = -dm * float(mn[j]);
            }
        }
    }
};

struct GQ6_K {
    using B = BlockQ6_K;
    static constexpr bool kSigned = false, kScale16 = true;
    static constexpr int kDxShift = 3;
    static constexpr Min kMin = Min::Per16;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const B* x = static_cast<const B*>(src);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const B& b = x[sb];
            __m256i* u = r.v() + 8 * sb;
            for (int h = 0; h < 2; ++h) unpack_half(b, h, u + 4 * h);
            const float d = h2f(b.d);
            for (int j = 0; j < 8; ++j) r.ws[size_t(8 * sb + j)] = d;
            for (int g = 0; g < 16; ++g) {
                r.sc[size_t(16 * sb + g)] = int16_t(b.scales[g]);
                r.wm[size_t(16 * sb + g)] = -32.0f * d * float(b.scales[g]);
            }
        }
    }
};

// The legacy 4- and 5-bit formats: quants 0..2^bits - 1, one scale per block, and either
// a stored min (Q4_1, Q5_1) or the implicit offset -2^(bits-1) (Q4_0, Q5_0).
template <class B, int kBits, bool kHasMin>
struct GLegacy {
    static constexpr bool kSigned = false, kScale16 = false;
    static constexpr int kG16 = kBits == 4 ? 8 : 4, kDxShift = 0;
    static constexpr int kOffsetShift = kHasMin ? 0 : kBits - 1;
    static constexpr bool kShuffleX = false;
    static constexpr Min kMin = Min::Per32;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const B* x = static_cast<const B*>(src);
        for (int64_t b = 0; b < nb; ++b) {
            if constexpr (kBits == 4)
                r.v()[b] = nibbles32(x[b].qs);
            else
                r.v()[b] = q5_bits(x[b]);
            const float d = h2f(x[b].d);
            r.ws[size_t(b)] = d;
            if constexpr (kHasMin)
                r.wm[size_t(b)] = h2f(x[b].m);
            else
                r.wm[size_t(b)] = -float(1 << (kBits - 1)) * d;
        }
    }
};
using GQ4_0 = GLegacy<BlockQ4_0, 4, false>;
using GQ4_1 = GLegacy<BlockQ4_1, 4, true>;
using GQ5_0 = GLegacy<BlockQ5_0, 5, false>;
using GQ5_1 = GLegacy<BlockQ5_1, 5, true>;

inline __m256i iq4_32(const uint8_t* qs) {
    const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)kvalues_iq4nl));
    return _mm256_shuffle_epi8(tbl, nibbles32(qs));
}

struct GIQ4_NL {
    static constexpr bool kSigned = true, kScale16 = false;
    static constexpr int kDxShift = 0;
    static constexpr Min kMin = Min::None;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const auto* x = static_cast<const BlockIQ4_NL*>(src);
        for (int64_t b = 0; b < nb; ++b) {
            r.v()[b] = iq4_32(x[b].qs);
            r.ws[size_t(b)] = h2f(x[b].d);
        }
    }
};

struct GIQ4_XS {
    static constexpr bool kSigned = true, kScale16 = false;
    static constexpr int kDxShift = 3;
    static constexpr Min kMin = Min::None;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const auto* x = static_cast<const BlockIQ4_XS*>(src);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const float d = h2f(x[sb].d);
            for (int ib = 0; ib < 8; ++ib) {
                const int ls = ((x[sb].scales_l[ib / 2] >> (4 * (ib % 2))) & 15) |
                               (((x[sb].scales_h >> (2 * ib)) & 3) << 4);
                set_int_scale(r, 8 * sb + ib, d, ls - 32);
                r.v()[8 * sb + ib] = iq4_32(x[sb].qs + 16 * ib);
            }
        }
    }
};

struct GQ5_K {
    static constexpr bool kSigned = false, kScale16 = false;
    static constexpr int kG16 = 4, kDxShift = 3;
    static constexpr bool kShuffleX = true;
    static constexpr Min kMin = Min::Per32;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const auto* x = static_cast<const BlockQ5_K*>(src);
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            uint8_t sc[8], mn[8];
            get_scales_mins_k4(x[sb].scales, sc, mn);
            const __m256i qh = _mm256_loadu_si256((const __m256i*)x[sb].qh);
            __m256i* u = r.v() + 8 * sb;
            for (int j = 0; j < 4; ++j) {
                const __m256i v = _mm256_loadu_si256((const __m256i*)(x[sb].qs + 32 * j));
                u[2 * j] = _mm256_and_si256(v, m4);
                u[2 * j + 1] = high_nibbles(v);
                q5k_add_high(qh, j, u[2 * j], u[2 * j + 1]);
            }
            const float d = h2f(x[sb].d), dm = h2f(x[sb].dmin);
            for (int j = 0; j < 8; ++j) {
                set_int_scale(r, 8 * sb + j, d, sc[j]);
                r.wm[size_t(8 * sb + j)] = -dm * float(mn[j]);
            }
        }
    }
};

struct GQ2_K {
    static constexpr bool kSigned = false, kScale16 = true;
    static constexpr int kDxShift = 3;
    static constexpr Min kMin = Min::Per16;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const auto* x = static_cast<const BlockQ2_K*>(src);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const BlockQ2_K& b = x[sb];
            __m256i* u = r.v() + 8 * sb;
            for (int h = 0; h < 2; ++h) unpack_half(b, h, u + 4 * h);
            const float d = h2f(b.d), dm = h2f(b.dmin);
            for (int j = 0; j < 8; ++j) r.ws[size_t(8 * sb + j)] = d;
            for (int g = 0; g < 16; ++g) {
                r.sc[size_t(16 * sb + g)] = int16_t(b.scales[g] & 15);
                r.wm[size_t(16 * sb + g)] = -dm * float(b.scales[g] >> 4);
            }
        }
    }
};

struct GQ3_K {
    static constexpr bool kSigned = false, kScale16 = true;
    static constexpr int kDxShift = 3;
    static constexpr Min kMin = Min::Per16;
    static void row(const void* src, int64_t nb, RowUnp& r) {
        const auto* x = static_cast<const BlockQ3_K*>(src);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const BlockQ3_K& b = x[sb];
            alignas(16) int8_t sc[16];
            _mm_store_si128(reinterpret_cast<__m128i*>(sc), q3k_scales(b.scales));
            __m256i* u = r.v() + 8 * sb;
            for (int h = 0; h < 2; ++h) unpack_half(b, h, u + 4 * h);
            const float d = h2f(b.d);
            for (int j = 0; j < 8; ++j) r.ws[size_t(8 * sb + j)] = d;
            for (int g = 0; g < 16; ++g) {
                const int s = sc[g];
                r.sc[size_t(16 * sb + g)] = int16_t(s);
                r.wm[size_t(16 * sb + g)] = -4.0f * d * float(s);
            }
        }
    }
};

// ---- panel assembly ----------------------------------------------------------------------
// In place: r[g] becomes dword g of each of r[0..7] (lane i from r[i]).
inline void transpose8x8_epi32(__m256i r[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

struct Scratch {
    RowUnp rows[8];
    Panel panel[kMaxPanels];
};

Scratch& scratch() {
    static thread_local Scratch s;
    return s;
}

// Unpacks rows [n, n + nr) (nr <= 8) of `w` into p; missing rows are zero.
template <class S>
void build_panel(const Tensor& w, int64_t n, int nr, Scratch& s, Panel& p) {
    const int64_t nb = p.nb;
    for (int r = 0; r < 8; ++r) {
        RowUnp& ru = s.rows[r];
        ru.resize(nb);
        if (r < nr) {
            S::row(w.row(n + r), nb, ru);
        } else {
            std::memset(ru.u.data(), 0, ru.u.size() * sizeof(V32));
            std::fill(ru.ws.begin(), ru.ws.end(), 0.0f);
            std::fill(ru.wm.begin(), ru.wm.end(), 0.0f);
            std::fill(ru.sc.begin(), ru.sc.end(), int16_t(0));
        }
    }
    auto* q = reinterpret_cast<__m256i*>(p.qs.data());
    auto* sg = reinterpret_cast<__m256i*>(p.sg.data());
    for (int64_t b = 0; b < nb; ++b) {
        __m256i v[8];
        for (int r = 0; r < 8; ++r) v[r] = s.rows[r].v()[b];
        transpose8x8_epi32(v);
        for (int g = 0; g < 8; ++g) {
            if constexpr (S::kSigned) {
                _mm256_store_si256(q + 8 * b + g, _mm256_abs_epi8(v[g]));
                _mm256_store_si256(sg + 8 * b + g, v[g]);
            } else {
                _mm256_store_si256(q + 8 * b + g, v[g]);
            }
        }
        for (int r = 0; r < 8; ++r) p.ws[size_t(8 * b + r)] = s.rows[r].ws[size_t(b)];
        if constexpr (S::kMin == Min::Per32)
            for (int r = 0; r < 8; ++r) p.wm[size_t(8 * b + r)] = s.rows[r].wm[size_t(b)];
        if constexpr (S::kMin == Min::Per16)
            for (int h = 0; h < 2; ++h)
                for (int r = 0; r < 8; ++r)
                    p.wm[size_t(16 * b + 8 * h + r)] = s.rows[r].wm[size_t(2 * b + h)];
        // (One scale per block: the tile reads only half 0.)
        if constexpr (S::kScale16 || super_sums<S>())
            for (int h = 0; h < (S::kScale16 ? 2 : 1); ++h) {
                // Row r's scale into lanes 2r and 2r + 1 (zero-extended, then copied into
                // the high half: the 16 bits of a negative scale survive).
                const size_t j = size_t(2 * b + h);
                const __m256i w = _mm256_cvtepu16_epi32(_mm_setr_epi16(
                    s.rows[0].sc[j], s.rows[1].sc[j], s.rows[2].sc[j], s.rows[3].sc[j],
                    s.rows[4].sc[j], s.rows[5].sc[j], s.rows[6].sc[j], s.rows[7].sc[j]));
                _mm256_store_si256(reinterpret_cast<__m256i*>(p.sc[j].b),
                                   _mm256_or_si256(w, _mm256_slli_epi32(w, 16)));
            }
    }
}

// build_packed_panel(S, ...): rows [n, n + 8) of the packed layout of S's type
// (quant/repack.h) into p, as build_panel would unpack them from the file layout.

// Q4_0_R8: the packed layout already
// holds each group's 4 bytes of the 8 rows side by side, so a block is 4 loads and the
// nibble split, with no transpose.
void build_packed_panel(GQ4_0, const Tensor& w, int64_t n, Panel& p) {
    const int64_t nb = p.nb;
    const auto* x = reinterpret_cast<const BlockQ4_0x8*>(w.row(n));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    auto* q = reinterpret_cast<__m256i*>(p.qs.data());
    for (int64_t b = 0; b < nb; ++b) {
        for (int v = 0; v < 4; ++v) {
            const __m256i raw = _mm256_loadu_si256((const __m256i*)x[b].qs[v]);
            _mm256_store_si256(q + 8 * b + v, _mm256_and_si256(raw, m4));
            _mm256_store_si256(q + 8 * b + 4 + v, high_nibbles(raw));
        }
        _mm256_storeu_ps(p.ws.data() + 8 * b,
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)x[b].d)));
    }
}

// Q8_0_R8: |w| and w, as build_panel stores them.
void build_packed_panel(GQ8_0, const Tensor& w, int64_t n, Panel& p) {
    const int64_t nb = p.nb;
    const auto* x = reinterpret_cast<const BlockQ8_0x8*>(w.row(n));
    auto* q = reinterpret_cast<__m256i*>(p.qs.data());
    auto* sg = reinterpret_cast<__m256i*>(p.sg.data());
    for (int64_t b = 0; b < nb; ++b) {
        for (int g = 0; g < 8; ++g) {
            const __m256i raw = _mm256_loadu_si256((const __m256i*)x[b].qs[g]);
            _mm256_store_si256(q + 8 * b + g, _mm256_abs_epi8(raw));
            _mm256_store_si256(sg + 8 * b + g, raw);
        }
        _mm256_storeu_ps(p.ws.data() + 8 * b,
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)x[b].d)));
    }
}

// Q4_K_R8 and Q5_K_R8: sub-block 2q's groups are the low nibbles of the pair's vectors,
// sub-block 2q + 1's the high ones (with Q5_K_R8's fifth bits added); scales and mins are
// unpacked to bytes once per super-block (k_r8_scales).
template <class Blk>
void build_k45_packed_panel(const Tensor& w, int64_t n, Panel& p) {
    const int64_t nsb = p.nb / 8;
    const auto* x = reinterpret_cast<const Blk*>(w.row(n));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    auto* q = reinterpret_cast<__m256i*>(p.qs.data());
    for (int64_t sb = 0; sb < nsb; ++sb) {
        const Blk& blk = x[sb];
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk.d));
        const __m256 negdm =
            _mm256_xor_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk.dmin)), sign);
        for (int pr = 0; pr < 4; ++pr)
            for (int g = 0; g < 8; ++g) {
                const __m256i raw = _mm256_loadu_si256((const __m256i*)blk.qs[pr][g]);
                __m256i lo = _mm256_and_si256(raw, m4), hi = high_nibbles(raw);
                if constexpr (std::is_same_v<Blk, BlockQ5_Kx8>)
                    q5k_r8_add_high(_mm256_loadu_si256((const __m256i*)blk.qh[pr][g / 4]), g, lo,
                                    hi);
                const int64_t b = 8 * sb + 2 * pr;
                _mm256_store_si256(q + 8 * b + g, lo);
                _mm256_store_si256(q + 8 * (b + 1) + g, hi);
            }
        const KR8Scales ks = k_r8_scales(blk);
        for (int j = 0; j < 8; ++j) {
            const int64_t b = 8 * sb + j;
            _mm256_storeu_ps(p.ws.data() + 8 * b, d);
            _mm256_storeu_ps(p.wm.data() + 8 * b,
                             _mm256_mul_ps(negdm, k_mins8(k_r8_sub(ks.mn, j))));
            _mm256_store_si256(reinterpret_cast<__m256i*>(p.sc[size_t(2 * b)].b),
                               k_scale_pairs(k_r8_sub(ks.sc, j)));
        }
    }
}
void build_packed_panel(GQ4_K, const Tensor& w, int64_t n, Panel& p) {
    build_k45_packed_panel<BlockQ4_Kx8>(w, n, p);
}
void build_packed_panel(GQ5_K, const Tensor& w, int64_t n, Panel& p) {
    build_k45_packed_panel<BlockQ5_Kx8>(w, n, p);
}

// gemm_panel.h's description of each type's panels, which other paths' tiles read, must
// say what the panels hold.
template <class S>
constexpr bool traits_match(DType t) {
    const PanelTraits p = panel_traits(t);
    constexpr PanelMin min = offset_shift<S>()       ? PanelMin::None
                             : S::kMin == Min::Per16 ? PanelMin::Per16
                             : S::kMin == Min::Per32 ? PanelMin::Per32
                                                     : PanelMin::None;
    return p.is_signed == S::kSigned && p.scale16 == S::kScale16 && p.super == super_sums<S>() &&
           p.dx_shift == S::kDxShift && p.min == min && p.offset_shift == offset_shift<S>();
}
static_assert(traits_match<GQ4_0>(DType::Q4_0) && traits_match<GQ4_1>(DType::Q4_1) &&
              traits_match<GQ5_0>(DType::Q5_0) && traits_match<GQ5_1>(DType::Q5_1) &&
              traits_match<GQ8_0>(DType::Q8_0) && traits_match<GIQ4_NL>(DType::IQ4_NL) &&
              traits_match<GIQ4_XS>(DType::IQ4_XS) && traits_match<GQ4_K>(DType::Q4_K) &&
              traits_match<GQ5_K>(DType::Q5_K) && traits_match<GQ2_K>(DType::Q2_K) &&
              traits_match<GQ3_K>(DType::Q3_K) && traits_match<GQ6_K>(DType::Q6_K));

PanelView view_of(const Panel& p) {
    PanelView v;
    v.nb = p.nb;
    v.qs = p.qs.data()->b;
    v.sg = p.sg.data()->b;
    v.ws = p.ws.data();
    v.wm = p.wm.data();
    v.sc = p.sc.data()->b;
    return v;
}

// ---- the tile: 8 panel rows x C activation rows -----------------------------------------
// Activation rows per register tile.
constexpr int kTile = kActTile;

// Writes lanes [0, nr) of v to out.
inline void store_lanes(__m256 v, float* out, int nr) {
    if (nr == 8) {
        _mm256_storeu_ps(out, v);
    } else {
        alignas(32) float t[8];
        _mm256_store_ps(t, v);
        std::memcpy(out, t, size_t(nr) * sizeof(float));
    }
}

// The 4-byte groups of C tile rows (C * 4 contiguous bytes at p), each in all lanes:
// four broadcast loads, or (kShuffle) one 16-byte load and four in-register shuffles.
// Which is faster depends on the type's whole loop: the shuffles measured 8-16% faster
// for Q4_K and Q5_K on Zen 3 and 0-5% slower for Q4_0 and Q4_1 (and slower still for
// the signed and 16-bit-scale types).
template <int C, bool kShuffle>
inline void bcast_rows(const int8_t* p, __m256i out[C]) {
    if constexpr (C == 4 && kShuffle) {
        const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)p));
        out[0] = _mm256_shuffle_epi32(v, 0x00);
        out[1] = _mm256_shuffle_epi32(v, 0x55);
        out[2] = _mm256_shuffle_epi32(v, 0xAA);
        out[3] = _mm256_shuffle_epi32(v, 0xFF);
    } else {
        for (int c = 0; c < C; ++c) out[c] = bcast4(p + 4 * c);
    }
}

// The tile: P panels (8P weight rows; 2, or 1 for the last 8 or fewer rows) x C activation
// rows. On Zen 3 a broadcast load also takes a vector shuffle slot; with two panels each
// broadcast feeds two products. At 512 x 5632 x 2048 on 1 thread, 16 x 4 against the
// former 8 x 4 measured 165 against 132 GFLOP/s for Q4_0, 170 against 145 for Q4_K and
// 134 against 96 for Q6_K (best of 9 interleaved runs; README has the other types).
// The 16-bit and the signed formats' block sums stay in registers; the float accumulators
// and the sums carried across blocks live in memory, touched once per block (in registers
// they would push the block sums out).
template <class S, int P, int C>
void panel_tile(const Panel* const* pn, const ActRows& a, const int8_t* xt, int64_t c0, float* y,
                size_t ys, int64_t n, int nr) {
    // Group g of block b of tile row c (see act_tiles_avx2).
    auto xg = [xt](int64_t b, int g, int c) { return xt + ((b * 8 + g) * C + c) * 4; };
    const __m256i ones = _mm256_set1_epi16(1);
    // The panels' fields as locals: read through the thread-local scratch, they would be
    // reloaded every block.
    const int64_t nb = pn[0]->nb;
    const float* pws[P];
    const float* pwm[P];
    const __m256i* pq[P];
    const __m256i* psg[P];
    const __m256i* psc[P];
#pragma GCC unroll 2
    for (int i = 0; i < P; ++i) {
        pws[i] = pn[i]->ws.data();
        pwm[i] = pn[i]->wm.data();
        pq[i] = pn[i]->q(0);
        psg[i] = pn[i]->s(0);
        psc[i] = reinterpret_cast<const __m256i*>(pn[i]->sc.data());
    }
    const float* dx[C];
    const float* sx[C];
    const int32_t* xs[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
        dx[c] = a.d_row(c0 + c);
        sx[c] = S::kMin == Min::Per16 ? a.s16_row(c0 + c) : a.s32_row(c0 + c);
        xs[c] = offset_shift<S>() ? a.xs_row(c0 + c) : nullptr;
    }
    alignas(32) float acc[P][C][8] = {};
    // Integer sums: of the block, or (super_sums) of the super-block so far.
    alignas(32) int32_t sm[P][C][8] = {};
    auto s_get = [&](int i, int c) { return _mm256_load_si256((const __m256i*)sm[i][c]); };
    auto s_put = [&](int i, int c, __m256i v) { _mm256_store_si256((__m256i*)sm[i][c], v); };
    // s += t, or s = t when the sum starts afresh.
    auto s_add = [&](int i, int c, __m256i t, bool fresh) {
        s_put(i, c, fresh ? t : _mm256_add_epi32(s_get(i, c), t));
    };
    constexpr int kStep = super_sums<S>() ? 8 : 1;  // blocks per float step
    for (int64_t b = 0; b < nb; ++b) {
        // Whether the sums start afresh with this block.
        const bool first = b % kStep == 0;
        // The 16-bit factor of the block's sums: its sub-block scale (super_sums) or 1.
        __m256i sv[P];
#pragma GCC unroll 2
        for (int i = 0; i < P; ++i)
            sv[i] = super_sums<S>() ? _mm256_load_si256(psc[i] + 2 * b) : ones;
        if constexpr (S::kSigned) {
            // The block's int32 sums in registers, added to the sums once per block.
            __m256i bs[P * C];
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                __m256i wa[P], wsg[P];
#pragma GCC unroll 2
                for (int i = 0; i < P; ++i) {
                    wa[i] = _mm256_load_si256(pq[i] + 8 * b + g);
                    wsg[i] = _mm256_load_si256(psg[i] + 8 * b + g);
                }
#pragma GCC unroll 4
                for (int c = 0; c < C; ++c) {
                    const __m256i x = bcast4(xg(b, g, c));
#pragma GCC unroll 2
                    for (int i = 0; i < P; ++i) {
                        const __m256i t = _mm256_madd_epi16(
                            _mm256_maddubs_epi16(wa[i], _mm256_sign_epi8(x, wsg[i])), sv[i]);
                        __m256i v = g ? _mm256_add_epi32(bs[i * C + c], t) : t;
                        pin(v);
                        bs[i * C + c] = v;
                    }
                }
            }
#pragma GCC unroll 4
            for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
                for (int i = 0; i < P; ++i) s_add(i, c, bs[i * C + c], first);
        } else if constexpr (S::kScale16) {
#pragma GCC unroll 4
            for (int g = 0; g < 8; g += 2) {
                __m256i w0[P], w1[P], scv[P];
#pragma GCC unroll 2
                for (int i = 0; i < P; ++i) {
                    w0[i] = _mm256_load_si256(pq[i] + 8 * b + g);
                    w1[i] = _mm256_load_si256(pq[i] + 8 * b + g + 1);
                    scv[i] = _mm256_load_si256(psc[i] + 2 * b + g / 4);
                }
#pragma GCC unroll 4
                for (int c = 0; c < C; ++c) {
                    const __m256i x0 = bcast4(xg(b, g, c)), x1 = bcast4(xg(b, g + 1, c));
#pragma GCC unroll 2
                    for (int i = 0; i < P; ++i) {
                        const __m256i t16 = _mm256_add_epi16(_mm256_maddubs_epi16(w0[i], x0),
                                                             _mm256_maddubs_epi16(w1[i], x1));
                        s_add(i, c, _mm256_madd_epi16(t16, scv[i]), first && g == 0);
                    }
                }
            }
        } else {
            // Unsigned weights: kG16 groups summed in 16 bits, then widened (and scaled).
            static_assert(8 % S::kG16 == 0);
            __m256i s16[P * C];
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                __m256i wv[P];
#pragma GCC unroll 2
                for (int i = 0; i < P; ++i) wv[i] = _mm256_load_si256(pq[i] + 8 * b + g);
                __m256i xb[C];
                bcast_rows<C, S::kShuffleX>(xg(b, g, 0), xb);
#pragma GCC unroll 4
                for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
                    for (int i = 0; i < P; ++i) {
                        const __m256i t = _mm256_maddubs_epi16(wv[i], xb[c]);
                        __m256i v = g % S::kG16 ? _mm256_add_epi16(s16[i * C + c], t) : t;
                        // (The 5-bit formats' chains of 4 went unpinned while the tile was
                        // 8 rows wide; in this one they spilled, Q5_K 82 stack accesses per
                        // block against 35, and pinning measured Q5_K 153 → 175 GFLOP/s,
                        // Q5_0 153 → 164, Q5_1 155 → 172, 1 thread, best of 12.)
                        pin(v);
                        s16[i * C + c] = v;
                        if (g % S::kG16 == S::kG16 - 1)
                            s_add(i, c, _mm256_madd_epi16(v, sv[i]), first && g < S::kG16);
                    }
            }
            if constexpr (offset_shift<S>() > 0)
#pragma GCC unroll 4
                for (int c = 0; c < C; ++c) {
                    const __m256i o =
                        _mm256_slli_epi32(_mm256_set1_epi32(xs[c][b]), offset_shift<S>());
#pragma GCC unroll 2
                    for (int i = 0; i < P; ++i) s_put(i, c, _mm256_sub_epi32(s_get(i, c), o));
                }
        }
        // The float step, per block or (super_sums) per super-block, then the mins of the
        // blocks it covers.
        if (b % kStep != kStep - 1) continue;
        __m256 wsv[P];
#pragma GCC unroll 2
        for (int i = 0; i < P; ++i) wsv[i] = _mm256_loadu_ps(pws[i] + 8 * b);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
            const __m256 d = _mm256_broadcast_ss(dx[c] + (b >> S::kDxShift));
#pragma GCC unroll 2
            for (int i = 0; i < P; ++i)
                _mm256_store_ps(acc[i][c], _mm256_fmadd_ps(_mm256_cvtepi32_ps(s_get(i, c)),
                                                           _mm256_mul_ps(wsv[i], d),
                                                           _mm256_load_ps(acc[i][c])));
        }
        constexpr int kMins = offset_shift<S>()       ? 0
                              : S::kMin == Min::Per16 ? 2
                              : S::kMin == Min::Per32 ? 1
                                                      : 0;
#pragma GCC unroll 16
        for (int64_t j = (b + 1 - kStep) * kMins; j < (b + 1) * kMins; ++j) {
            __m256 wm[P];
#pragma GCC unroll 2
            for (int i = 0; i < P; ++i) wm[i] = _mm256_loadu_ps(pwm[i] + 8 * j);
#pragma GCC unroll 4
            for (int c = 0; c < C; ++c) {
                const __m256 m = _mm256_broadcast_ss(sx[c] + j);
#pragma GCC unroll 2
                for (int i = 0; i < P; ++i)
                    _mm256_store_ps(acc[i][c],
                                    _mm256_fmadd_ps(wm[i], m, _mm256_load_ps(acc[i][c])));
            }
        }
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
        for (int i = 0; i < P; ++i)
            if (8 * i < nr)
                store_lanes(_mm256_load_ps(acc[i][c]), y + size_t(c0 + c) * ys + size_t(n + 8 * i),
                            std::min(8, nr - 8 * i));
}

// All activation rows [c0, c1) against the P panels of rows [n, n + nr).
template <class S, int P>
void panel_rows(const Panel* const* pn, const ActRows& a, int64_t c0, int64_t c1, float* y,
                size_t ys, int64_t n, int nr) {
    const int8_t* xq = a.qt.data();
    int64_t c = c0;
    for (; c + kTile <= c1; c += kTile)
        panel_tile<S, P, kTile>(pn, a, xq + c * a.k, c, y, ys, n, nr);
    // The last 1 to kTile - 1 rows.
    with_rows<kTile - 1>(int(c1 - c), [&](auto rows) {
        panel_tile<S, P, rows()>(pn, a, xq + c * a.k, c, y, ys, n, nr);
    });
}

// kPacked: w is the packed layout of S's type (quant/repack.h), and [n0, n1) whole groups.
// ext: another path's tile (panel_matmul_with), or nullptr for the AVX2 one.
template <class S, bool kPacked = false>
void panel_drive(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys,
                 PanelRowsFn ext) {
    if constexpr (kPacked) check_packed_range(w, n0, n1);
    Scratch& s = scratch();
    for (int i = 0; i < (ext ? kMaxPanels : 2); ++i) s.panel[i].resize(a.k / 32);
    const Panel* const pn[2] = {&s.panel[0], &s.panel[1]};
    // Activation rows per pass over the panels. A panel is built once per pass, and that
    // costs more than streaming the tiles from L3: at TinyLlama's shapes, 512 rows per
    // pass measured 10-25% faster than 256 or 128 (whose tiles stay in L2).
    const int64_t chunk = std::min<int64_t>(a.m, 512);
    for (int64_t c0 = 0; c0 < a.m; c0 += chunk) {
        const int64_t c1 = std::min(a.m, c0 + chunk);
        // Two panels (16 rows) at a time, or up to kMaxPanels for another path's tile;
        // the last rows take fewer.
        const int64_t step = ext ? 8 * kMaxPanels : 16;
        for (int64_t n = n0; n < n1; n += step) {
            const int nr = int(std::min<int64_t>(step, n1 - n));
            for (int i = 0; 8 * i < nr; ++i) {
                if constexpr (kPacked)
                    build_packed_panel(S{}, w, n + 8 * i, s.panel[i]);
                else
                    build_panel<S>(w, n + 8 * i, std::min(8, nr - 8 * i), s, s.panel[i]);
            }
            if (ext) {
                PanelView pv[kMaxPanels];
                for (int i = 0; i < kMaxPanels; ++i) pv[i] = view_of(s.panel[i]);
                ext(pv, (nr + 7) / 8, a, c0, c1, y, ys, n, nr);
            } else if (nr > 8)
                panel_rows<S, 2>(pn, a, c0, c1, y, ys, n, nr);
            else
                panel_rows<S, 1>(pn, a, c0, c1, y, ys, n, nr);
        }
    }
}

template <class S, bool kPacked = false>
void panel_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    panel_drive<S, kPacked>(w, n0, n1, a, y, ys, nullptr);
}

// Calls f(S{}, std::bool_constant<kPacked>()) with the panel format S of weight type t and
// whether t is S's packed layout; false when t has no panels.
template <class F>
bool visit_panel_format(DType t, F&& f) {
    switch (t) {
        case DType::Q4_0:
            return f(GQ4_0{}, std::false_type()), true;
        case DType::Q4_0_R8:
            return f(GQ4_0{}, std::true_type()), true;
        case DType::Q4_1:
            return f(GQ4_1{}, std::false_type()), true;
        case DType::Q5_0:
            return f(GQ5_0{}, std::false_type()), true;
        case DType::Q5_1:
            return f(GQ5_1{}, std::false_type()), true;
        case DType::Q8_0:
            return f(GQ8_0{}, std::false_type()), true;
        case DType::Q8_0_R8:
            return f(GQ8_0{}, std::true_type()), true;
        case DType::IQ4_NL:
            return f(GIQ4_NL{}, std::false_type()), true;
        case DType::Q2_K:
            return f(GQ2_K{}, std::false_type()), true;
        case DType::Q3_K:
            return f(GQ3_K{}, std::false_type()), true;
        case DType::Q4_K:
            return f(GQ4_K{}, std::false_type()), true;
        case DType::Q4_K_R8:
            return f(GQ4_K{}, std::true_type()), true;
        case DType::Q5_K:
            return f(GQ5_K{}, std::false_type()), true;
        case DType::Q5_K_R8:
            return f(GQ5_K{}, std::true_type()), true;
        case DType::Q6_K:
            return f(GQ6_K{}, std::false_type()), true;
        case DType::IQ4_XS:
            return f(GIQ4_XS{}, std::false_type()), true;
        default:
            return false;
    }
}

}  // namespace

void panel_matmul_with(DType t, PanelRowsFn rows, const Tensor& w, int64_t n0, int64_t n1,
                       const ActRows& a, float* y, size_t ys) {
    const bool known = visit_panel_format(t, [&](auto s, auto packed) {
        panel_drive<decltype(s), packed()>(w, n0, n1, a, y, ys, rows);
    });
    if (!known) throw Error("panel GEMM: no panels for " + std::string(dtype_name(t)));
}

// Tile t (activation rows 4t .. 4t + nc - 1, nc = min(4, m - 4t)) occupies bytes
// [4t K, (4t + nc) K) of qt, with the rows' 4-byte groups j together: bytes
// [(j nc + c) 4, +4) of the tile are group j of its row c. A tile then reads its
// activations as one sequential stream instead of nc streams K bytes (a power of two)
// apart, which would compete for the same L1 sets. Chunks of rows are multiples of 4
// from row 0, so every chunk starts on a tile.
void act_tiles_avx2(ActRows& a, int64_t m0, int64_t m1) {
    if (a.m <= kVecMaxM || a.kind == ActKind::F32 || a.kind == ActKind::F16 ||
        a.kind == ActKind::BF16)
        return;
    const int64_t k = a.k, ng = k / 4;
    for (int64_t i = m0; i < m1; ++i) {
        const int64_t t0 = i / kTile * kTile;
        const int64_t nc = std::min<int64_t>(kTile, a.m - t0), c = i - t0;
        const int8_t* row = a.q_row(i);
        int8_t* out = a.qt.data() + t0 * k + c * 4;
        for (int64_t j = 0; j < ng; ++j) std::memcpy(out + j * nc * 4, row + 4 * j, 4);
    }
}

MatmulFn gemm_avx2(DType t) {
    MatmulFn fn = nullptr;
    visit_panel_format(t, [&](auto s, auto packed) { fn = panel_matmul<decltype(s), packed()>; });
    return fn;
}

}  // namespace lcx::cpu
