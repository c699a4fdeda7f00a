// Type dispatch, argument checks and the non-finite input guard of the quant API.
#include "quant/quant.h"

#include <cmath>
#include <string>

#include "common/error.h"

namespace lcx {
namespace {

bool is_block_type_supported(DType type) {
    switch (type) {
        case DType::Q4_0:
        case DType::Q4_1:
        case DType::Q5_0:
        case DType::Q5_1:
        case DType::Q8_0:
        case DType::Q8_1:
        case DType::Q2_K:
        case DType::Q3_K:
        case DType::Q4_K:
        case DType::Q5_K:
        case DType::Q6_K:
        case DType::Q8_K:
        case DType::IQ4_NL:
        case DType::IQ4_XS:
            return true;
        default:
            return false;
    }
}

std::string type_name(DType type) {
    const auto t = dtype_traits(uint32_t(type));
    return t ? std::string(t->name) : "type id " + std::to_string(uint32_t(type));
}

// The checks below build their messages only on failure: they run for every row a
// decode step converts (KV cache stores), where a string allocation costs more than the
// row.
void check_length(DType type, int64_t n, const char* what) {
    if (n < 0) throw Error(std::string(what) + ": negative element count " + std::to_string(n));
    const int64_t bs = traits(type).block_size;
    if (n % bs != 0)
        throw Error(std::string(what) + ": " + std::to_string(n) +
                    " elements is not a multiple of the " + type_name(type) + " block size " +
                    std::to_string(bs));
}

// Index of the first NaN or Inf in x[0..n), or -1.
int64_t first_non_finite(const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return i;
    return -1;
}

// Throws when x[0..n) holds a NaN or an Inf; `row` >= 0 is named in the message.
void check_finite(DType type, const float* x, int64_t n, int64_t row = -1) {
    const int64_t bad = first_non_finite(x, n);
    if (bad < 0) return;
    const std::string where = row >= 0 ? "row " + std::to_string(row) + ", " : "";
    throw Error("quantize to " + type_name(type) + ": " + where + "element " + std::to_string(bad) +
                " is not finite (" + std::to_string(x[bad]) + ")");
}

template <class Block>
const Block* as(const void* p) {
    return static_cast<const Block*>(p);
}
template <class Block>
Block* as(void* p) {
    return static_cast<Block*>(p);
}

void quantize_unchecked(DType type, const float* src, void* dst, int64_t n) {
    switch (type) {
        case DType::F16:
            return quantize_row_f16(src, as<uint16_t>(dst), n);
        case DType::BF16:
            return quantize_row_bf16(src, as<uint16_t>(dst), n);
        case DType::Q4_0:
            return quantize_row_q4_0(src, as<BlockQ4_0>(dst), n);
        case DType::Q4_1:
            return quantize_row_q4_1(src, as<BlockQ4_1>(dst), n);
        case DType::Q5_0:
            return quantize_row_q5_0(src, as<BlockQ5_0>(dst), n);
        case DType::Q5_1:
            return quantize_row_q5_1(src, as<BlockQ5_1>(dst), n);
        case DType::Q8_0:
            return quantize_row_q8_0(src, as<BlockQ8_0>(dst), n);
        case DType::Q8_1:
            return quantize_row_q8_1(src, as<BlockQ8_1>(dst), n);
        case DType::Q2_K:
            return quantize_row_q2_K(src, as<BlockQ2_K>(dst), n);
        case DType::Q3_K:
            return quantize_row_q3_K(src, as<BlockQ3_K>(dst), n);
        case DType::Q4_K:
            return quantize_row_q4_K(src, as<BlockQ4_K>(dst), n);
        case DType::Q5_K:
            return quantize_row_q5_K(src, as<BlockQ5_K>(dst), n);
        case DType::Q6_K:
            return quantize_row_q6_K(src, as<BlockQ6_K>(dst), n);
        case DType::Q8_K:
            return quantize_row_q8_K(src, as<BlockQ8_K>(dst), n);
        case DType::IQ4_NL:
            return quantize_row_iq4_nl(src, as<BlockIQ4_NL>(dst), n);
        case DType::IQ4_XS:
            return quantize_row_iq4_xs(src, as<BlockIQ4_XS>(dst), n);
        default:
            break;
    }
    throw Error("quantize: no quantizer for " + type_name(type));
}

}  // namespace

bool can_dequantize(DType type) {
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 ||
           is_block_type_supported(type);
}

bool can_quantize(DType type) {
    return type == DType::F16 || type == DType::BF16 || is_block_type_supported(type);
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
    if (!can_dequantize(type)) throw Error("dequantize: unsupported type " + type_name(type));
    check_length(type, n, "dequantize");
    switch (type) {
        case DType::F32:
            for (int64_t i = 0; i < n; ++i) dst[i] = as<float>(src)[i];
            return;
        case DType::F16:
            return dequantize_row_f16(as<uint16_t>(src), dst, n);
        case DType::BF16:
            return dequantize_row_bf16(as<uint16_t>(src), dst, n);
        case DType::Q4_0:
            return dequantize_row_q4_0(as<BlockQ4_0>(src), dst, n);
        case DType::Q4_1:
            return dequantize_row_q4_1(as<BlockQ4_1>(src), dst, n);
        case DType::Q5_0:
            return dequantize_row_q5_0(as<BlockQ5_0>(src), dst, n);
        case DType::Q5_1:
            return dequantize_row_q5_1(as<BlockQ5_1>(src), dst, n);
        case DType::Q8_0:
            return dequantize_row_q8_0(as<BlockQ8_0>(src), dst, n);
        case DType::Q8_1:
            return dequantize_row_q8_1(as<BlockQ8_1>(src), dst, n);
        case DType::Q2_K:
            return dequantize_row_q2_K(as<BlockQ2_K>(src), dst, n);
        case DType::Q3_K:
            return dequantize_row_q3_K(as<BlockQ3_K>(src), dst, n);
        case DType::Q4_K:
            return dequantize_row_q4_K(as<BlockQ4_K>(src), dst, n);
        case DType::Q5_K:
            return dequantize_row_q5_K(as<BlockQ5_K>(src), dst, n);
        case DType::Q6_K:
            return dequantize_row_q6_K(as<BlockQ6_K>(src), dst, n);
        case DType::Q8_K:
            return dequantize_row_q8_K(as<BlockQ8_K>(src), dst, n);
        case DType::IQ4_NL:
            return dequantize_row_iq4_nl(as<BlockIQ4_NL>(src), dst, n);
        case DType::IQ4_XS:
            return dequantize_row_iq4_xs(as<BlockIQ4_XS>(src), dst, n);
        default:
            break;
    }
    throw Error("dequantize: unsupported type " + type_name(type));
}

size_t quantize_row(DType type, const float* src, void* dst, int64_t n) {
    if (!can_quantize(type)) throw Error("quantize: no quantizer for " + type_name(type));
    check_length(type, n, "quantize");
    if (type != DType::F16 && type != DType::BF16) check_finite(type, src, n);
    quantize_unchecked(type, src, dst, n);
    return row_bytes(type, n);
}

size_t quantize_rows(DType type, const float* src, void* dst, int64_t n_rows, int64_t row_len) {
    if (!can_quantize(type)) throw Error("quantize: no quantizer for " + type_name(type));
    if (n_rows < 0) throw Error("quantize: negative row count " + std::to_string(n_rows));
    check_length(type, row_len, "quantize (row length)");
    const size_t row_size = row_bytes(type, row_len);
    const bool needs_finite = type != DType::F16 && type != DType::BF16;
    auto* out = static_cast<uint8_t*>(dst);
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* row = src + r * row_len;
        if (needs_finite) check_finite(type, row, row_len, r);
        quantize_unchecked(type, row, out + size_t(r) * row_size, row_len);
    }
    return size_t(n_rows) * row_size;
}

}  // namespace lcx
