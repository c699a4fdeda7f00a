// The element types of GGUF tensors: their GGUF/ggml ids, block geometry and names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lcx {

// Values are the GGUF (ggml) type ids, so a DType can be written to a file as is.
enum class DType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,

    // In-memory layouts, never read from or written to a file (ids from kFirstPackedId).
    // A packed type holds the weights of its file type with the rows interleaved in groups
    // (DTypeTraits::row_group) so a kernel reads several rows' blocks in one stream. A
    // group of rows takes row_group rows' bytes (row_bytes of the packed type), so a view
    // starting on a group keeps working. Only matmul reads them (see quant/repack.h).
    Q4_0_R8 = 64,
    Q4_K_R8 = 65,
    Q8_0_R8 = 66,
    Q5_K_R8 = 67,
};

constexpr uint32_t kFirstPackedId = 64;

struct DTypeTraits {
    DType type;
    std::string_view name;   // ggml's spelling: "F32", "Q4_K", ...
    int64_t block_size;      // elements per block (1 for plain types)
    size_t block_bytes;      // bytes per block
    bool quantized;          // true for block formats
    bool supported;          // this engine can dequantize / compute with it
    int row_group = 1;       // packed layouts: rows interleaved per group (else 1)
    DType file_type = type;  // packed layouts: the file type whose blocks they hold
};

// Traits of a GGUF type id, or nullopt for ids that no ggml version defined (including
// the retired 4, 5 and 31-33, 36-38) and for the packed in-memory layouts.
std::optional<DTypeTraits> dtype_traits(uint32_t gguf_id);
const DTypeTraits& traits(DType type);  // `type` must be a known id (file or packed)
std::string_view dtype_name(DType type);
// A GGUF type by its ggml name, case-insensitive (packed layouts are not file types).
std::optional<DType> dtype_from_name(std::string_view name);
inline bool is_packed(DType type) { return uint32_t(type) >= kFirstPackedId; }

// Bytes needed for `n` elements (n must be a multiple of the block size).
inline size_t row_bytes(DType type, int64_t n) {
    const auto& t = traits(type);
    return size_t(n / t.block_size) * t.block_bytes;
}

}  // namespace lcx
