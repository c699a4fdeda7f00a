// Packed in-memory weight layouts (DType::Q4_0_R8, ...): the blocks of a file type with
// the rows interleaved in groups, made once when a model is loaded for a backend that
// asks for them. A decode kernel then reads one stream for a group of rows, its lanes are
// rows (no horizontal sums) and the group's block scales sit side by side.
#pragma once

#include <cstdint>
#include <optional>

#include "quant/blocks.h"
#include "tensor/dtype.h"

namespace lcx {

// Q4_0_R8: per group of 8 rows, per 32-weight block, the 8 rows' f16 scales, then 4 x 32
// bytes of quants where byte 4r + j of vector g is byte 4g + j of row r's qs. The low
// nibbles of vector g are weights 4g..4g+3 of each row, the high nibbles weights
// 16 + 4g..16 + 4g + 3: four bytes per row, as one vpmaddubsw against a broadcast group of
// four activation quants wants them.
struct BlockQ4_0x8 {
    uint16_t d[8];
    uint8_t qs[4][32];
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0), "wrong q4_0x8 block size");

// Q4_K_R8: per group of 8 rows, per 256-weight super-block, the 8 rows' d and dmin, their
// 6-bit scales and mins, then the quants: for each pair p of sub-blocks (32 bytes of each
// row's qs) and group g of 4 bytes, byte 4r + i of qs[p][g] is row r's qs[32p + 4g + i].
// Low nibbles are weights 4g..4g+3 of sub-block 2p, high nibbles those of sub-block 2p + 1.
//
// The scales and mins keep their 6 bits, so a group takes exactly the file's bytes, but
// in a layout a few vector shifts and masks turn into bytes. Number them i = 8j + r
// (sub-block j, row r), 0..63: byte i of scales_lo holds the low 4 bits of scale i (low
// nibble) and of scale i + 32 (high nibble); mins_lo likewise for the mins; byte i of
// high holds the top 2 bits of scale i, scale i + 32, min i and min i + 32, in bits 0-1,
// 2-3, 4-5 and 6-7.
struct BlockQ4_Kx8 {
    uint16_t d[8];
    uint16_t dmin[8];
    uint8_t scales_lo[32];
    uint8_t mins_lo[32];
    uint8_t high[32];
    uint8_t qs[4][8][32];
};
static_assert(sizeof(BlockQ4_Kx8) == 8 * sizeof(BlockQ4_K), "wrong q4_Kx8 block size");

// Scale and min of sub-block j of row r of a Q4_K_R8 or Q5_K_R8 group (the layout above).
// The setter ORs the bits in: the group's scale bytes start zeroed.
inline void q4_kx8_set_scale_min(BlockQ4_Kx8& b, int j, int r, uint8_t sc, uint8_t mn) {
    const int i = (8 * j + r) % 32, half = (8 * j + r) / 32;
    b.scales_lo[i] |= uint8_t((sc & 15) << (4 * half));
    b.mins_lo[i] |= uint8_t((mn & 15) << (4 * half));
    b.high[i] |= uint8_t(((sc >> 4) << (2 * half)) | ((mn >> 4) << (4 + 2 * half)));
}
inline uint8_t q4_kx8_scale(const BlockQ4_Kx8& b, int j, int r) {
    const int i = (8 * j + r) % 32, half = (8 * j + r) / 32;
    return uint8_t(((b.scales_lo[i] >> (4 * half)) & 15) | (((b.high[i] >> (2 * half)) & 3) << 4));
}
inline uint8_t q4_kx8_min(const BlockQ4_Kx8& b, int j, int r) {
    const int i = (8 * j + r) % 32, half = (8 * j + r) / 32;
    return uint8_t(((b.mins_lo[i] >> (4 * half)) & 15) |
                   (((b.high[i] >> (4 + 2 * half)) & 3) << 4));
}

// Q5_K_R8: Q4_K_R8's layout of the scales, mins and low 4 bits, then the fifth bits: for
// each pair p and each half q of its groups, byte 4r + i of qh[p][q] holds in bits 2j and
// 2j + 1 the fifth bits of row r's weight 4(4q + j) + i of sub-blocks 2p and 2p + 1 (the
// low and high nibble of byte 4r + i of qs[p][4q + j]).
struct BlockQ5_Kx8 : BlockQ4_Kx8 {
    uint8_t qh[4][2][32];
};
static_assert(sizeof(BlockQ5_Kx8) == 8 * sizeof(BlockQ5_K), "wrong q5_Kx8 block size");

// Q8_0_R8: per group of 8 rows, per 32-weight block, the 8 rows' f16 scales, then 8 x 32
// bytes where byte 4r + i of vector g is row r's qs[4g + i].
struct BlockQ8_0x8 {
    uint16_t d[8];
    int8_t qs[8][32];
};
static_assert(sizeof(BlockQ8_0x8) == 8 * sizeof(BlockQ8_0), "wrong q8_0x8 block size");

// The packed layout of `type` if there is one.
std::optional<DType> packed_layout(DType type);

// Whether rows of `k` weights, `n_rows` of them, can be stored as `packed`: whole groups
// of rows, whole blocks.
bool can_pack(DType packed, int64_t n_rows, int64_t k);

// Writes n_rows rows of k weights, given in the file layout at src, to dst in the packed
// layout (row_bytes(packed, k) per row). can_pack must hold.
void pack_rows(DType packed, const void* src, void* dst, int64_t n_rows, int64_t k);

// Row r of a packed tensor whose bytes start at `data`, written to dst in the file layout
// (row_bytes(file type, k) bytes).
void unpack_row(DType packed, const void* data, int64_t r, int64_t k, void* dst);

// Row r of a packed tensor as k floats: unpack_row, then the file type's dequantizer.
void dequantize_packed_row(DType packed, const void* data, int64_t r, int64_t k, float* dst);

}  // namespace lcx
