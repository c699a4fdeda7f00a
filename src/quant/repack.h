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
    uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0), "wrong q4_0x8 block size");

// The packed layout of `type` if there is one.
std::optional<DType> packed_layout(DType type);

// Whether rows of `k` weights, `n_rows` of them, can be stored as `packed`: whole groups
// of rows, whole blocks.
bool can_pack(DType packed, int64_t n_rows, int64_t k);

// Writes n_rows rows of k weights, given in the file layout at src, to dst in the packed
// layout (the same number of bytes). can_pack must hold.
void pack_rows(DType packed, const void* src, void* dst, int64_t n_rows, int64_t k);

// Row r of a packed tensor whose bytes start at `data`, written to dst in the file layout
// (row_bytes(file type, k) bytes).
void unpack_row(DType packed, const void* data, int64_t r, int64_t k, void* dst);

// Row r of a packed tensor as k floats: unpack_row, then the file type's dequantizer.
void dequantize_packed_row(DType packed, const void* data, int64_t r, int64_t k, float* dst);

}  // namespace lcx
