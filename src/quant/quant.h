// Reference (scalar) quantization and dequantization of every ggml block format this
// engine reads. The quantizers are ggml's deterministic reference algorithms (what
// `llama-quantize` uses without an importance matrix), written so that they reproduce
// its output bit for bit; the fast kernels in backend/cpu are tested against these.
//
// Behaviour on bad input:
//   * `n` (elements) must be a multiple of the type's block size: lcx::Error otherwise.
//   * The block formats need finite input (one NaN or Inf would poison a whole block's
//     scale): quantize_row / quantize_rows throw lcx::Error naming the element (and row).
//     F16 and BF16 represent non-finite values, so they are converted as they are.
//   * Finite values beyond a format's range (e.g. a Q4_0 block maximum above 8 * 65504,
//     whose scale overflows fp16) follow ggml: the stored scale becomes Inf.
// The per-type functions below do no checking: they expect whole blocks and finite input.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "quant/blocks.h"
#include "tensor/dtype.h"

namespace lcx {

// --- type-generic entry points -----------------------------------------------------------

// True for the types dequantize_row accepts: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1, Q2_K..Q8_K, IQ4_NL, IQ4_XS.
bool can_dequantize(DType type);
// True for the types quantize_row accepts: the above except F32.
bool can_quantize(DType type);

// Converts `n` elements stored as `type` to floats.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// Quantizes `n` floats into `dst` (row_bytes(type, n) bytes); returns the bytes written.
size_t quantize_row(DType type, const float* src, void* dst, int64_t n);

// Quantizes `n_rows` rows of `row_len` floats, row after row; returns the bytes written.
// Errors name the row and the element within it.
size_t quantize_rows(DType type, const float* src, void* dst, int64_t n_rows, int64_t row_len);

// --- per-type dequantizers (n: elements, a multiple of the block size) --------------------

void dequantize_row_f16(const uint16_t* x, float* y, int64_t n);
void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n);
void dequantize_row_q2_K(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_row_q3_K(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_K(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_K(const BlockQ8_K* x, float* y, int64_t n);
void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n);
void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n);

// --- per-type reference quantizers (n: elements, a multiple of the block size) ------------

void quantize_row_f16(const float* x, uint16_t* y, int64_t n);
void quantize_row_bf16(const float* x, uint16_t* y, int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);
void quantize_row_q2_K(const float* x, BlockQ2_K* y, int64_t n);
void quantize_row_q3_K(const float* x, BlockQ3_K* y, int64_t n);
void quantize_row_q4_K(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_K(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_K(const float* x, BlockQ6_K* y, int64_t n);
void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n);
// IQ4_NL / IQ4_XS as llama-quantize makes them (ggml's quantize_iq4_nl/_xs with no
// importance matrix: 7 scale trials either side of the first guess).
void quantize_row_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n);
void quantize_row_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n);

// ggml's round-to-nearest for |x| < 2^22 via the 1.5 * 2^23 trick (ties to even); the
// quantizers use exactly this so that their results match ggml's bit for bit.
inline int nearest_int(float fval) {
    const uint32_t i = std::bit_cast<uint32_t>(fval + 12582912.f);
    return int(i & 0x007fffffu) - 0x00400000;
}

// Index of the IQ4_NL value nearest to x (ties go to the larger value, as in ggml).
int best_index_iq4nl(float x);

}  // namespace lcx
