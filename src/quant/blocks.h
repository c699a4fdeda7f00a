// Block layouts of ggml's quantized formats, byte for byte as they sit in GGUF files.
// Every struct is standard-layout with no padding; the static_asserts pin the sizes to
// ggml's so a pointer into a mapped tensor can be read as an array of these blocks.
// Half-precision fields are stored as raw uint16_t bits (see common/fp16.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lcx {

// Elements per block.
inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;  // super-block of the K and IQ4_XS formats
inline constexpr int kQK4_NL = 32;
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales/mins of Q4_K and Q5_K

// d: scale; q = round(x / d) + 8 in [0, 15]; element j in the low nibble of qs[j],
// element j + 16 in the high nibble.
struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "wrong q4_0 block size");

// x = d * q + m, q in [0, 15]; same nibble order as Q4_0.
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "wrong q4_1 block size");

// 5-bit quants: low 4 bits as in Q4_0, bit 4 of element j in bit j of qh (little endian).
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "wrong q5_0 block size");

struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "wrong q5_1 block size");

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "wrong q8_0 block size");

// s = d * sum(qs): lets a dot product with Q4_1/Q5_1 fold in their offsets cheaply.
struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36, "wrong q8_1 block size");

// 16 sub-blocks of 16: scales[i] holds a 4-bit scale (low) and 4-bit min (high);
// x = d * sc * q - dmin * m, q in [0, 3], four 2-bit quants per byte.
struct BlockQ2_K {
    uint8_t scales[kQK_K / 16];
    uint8_t qs[kQK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 2 * 2 + kQK_K / 16 + kQK_K / 4, "wrong q2_K block size");

// 16 sub-blocks of 16 with signed 6-bit scales (packed into 12 bytes); quants are
// 2 low bits in qs plus a high bit in hmask, stored as q + 4 with the bit *cleared*
// meaning "subtract 4".
struct BlockQ3_K {
    uint8_t hmask[kQK_K / 8];
    uint8_t qs[kQK_K / 4];
    uint8_t scales[12];
    uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 2 + kQK_K / 4 + kQK_K / 8 + 12, "wrong q3_K block size");

// 8 sub-blocks of 32 with 6-bit scales and mins packed into 12 bytes
// (see get_scale_min_k4); x = d * sc * q - dmin * m, q in [0, 15].
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 2 * 2 + kKScaleSize + kQK_K / 2, "wrong q4_K block size");

// As Q4_K plus a fifth bit per quant in qh.
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 2 * 2 + kKScaleSize + kQK_K / 2 + kQK_K / 8,
              "wrong q5_K block size");

// 16 sub-blocks of 16 with signed 8-bit scales; 6-bit quants (4 low bits in ql,
// 2 high bits in qh) stored as q + 32.
struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 2 + kQK_K / 16 + 3 * kQK_K / 4, "wrong q6_K block size");

// Activation format for K-quant dot products: float scale, and the sums of each group
// of 16 quants.
struct BlockQ8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 4 + kQK_K + kQK_K / 16 * 2, "wrong q8_K block size");

// Non-linear 4-bit: each nibble indexes kvalues_iq4nl; same nibble order as Q4_0.
struct BlockIQ4_NL {
    uint16_t d;
    uint8_t qs[kQK4_NL / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18, "wrong iq4_nl block size");

// IQ4_NL values in 8 sub-blocks of 32 with 6-bit scales (stored + 32): the low 4 bits
// in scales_l (two per byte), the high 2 bits in scales_h (two bits per sub-block).
struct BlockIQ4_XS {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[kQK_K / 64];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 2 + 2 + kQK_K / 64 + kQK_K / 2, "wrong iq4_xs block size");

// The 16 values an IQ4_NL / IQ4_XS nibble stands for (times the block scale).
inline constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

// Unpacks scale and min of sub-block j (0..7) from the 12-byte scales of Q4_K / Q5_K:
// sub-blocks 0-3 keep 6 bits each in bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7
// keep their low 4 bits in bytes 8-11 and their high 2 bits in the top bits of bytes 0-7.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

// All 8 scales and mins at once, as get_scale_min_k4 for j = 0..7, with 32-bit masks.
inline void get_scales_mins_k4(const uint8_t* q, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u[4];
    std::memcpy(u, q, 12);
    constexpr uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    u[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    const uint32_t t = u[1] & m1;
    u[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    u[2] = t;
    u[0] &= m1;
    std::memcpy(sc, &u[0], 8);
    std::memcpy(mn, &u[2], 8);
}

// Q3_K: 16 signed 6-bit scales in 12 bytes. Scale j is (low 4 bits: byte j for j < 8,
// else the high nibble of byte j - 8) | (high 2 bits: bits 2 (j / 4) of byte 8 + j % 4)
// << 4, minus 32.
inline int get_scale_q3k(const uint8_t* s, int j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    return (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// All 16 at once, before the -32 (sc[j] = get_scale_q3k(s, j) + 32), with 32-bit masks.
inline void get_scales_q3k(const uint8_t* s, uint8_t sc[16]) {
    uint32_t a[4];
    std::memcpy(a, s, 12);
    constexpr uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
    const uint32_t t = a[2];
    a[2] = ((a[0] >> 4) & k2) | (((t >> 4) & k1) << 4);
    a[3] = ((a[1] >> 4) & k2) | (((t >> 6) & k1) << 4);
    a[0] = (a[0] & k2) | (((t >> 0) & k1) << 4);
    a[1] = (a[1] & k2) | (((t >> 2) & k1) << 4);
    std::memcpy(sc, a, 16);
}

}  // namespace lcx
