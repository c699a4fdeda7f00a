// Helpers shared by the reference quantizers (not part of the public API).
#pragma once

#include <cstdint>
#include <limits>

namespace lcx::quant_detail {

// float -> integer conversion as ggml's C code gets it on x86-64 (cvttss2si: truncation,
// with NaN and out-of-range values giving INT32_MIN), then narrowed to the low byte.
// Only degenerate inputs (subnormal block maxima, whose inverse scale overflows to Inf)
// reach the out-of-range case; emulating the instruction keeps us free of undefined
// behaviour there while matching ggml everywhere else.
inline int32_t trunc_to_i32(float v) {
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
    return static_cast<int32_t>(v);
}
inline int8_t trunc_to_i8(float v) {
    return static_cast<int8_t>(static_cast<uint8_t>(uint32_t(trunc_to_i32(v)) & 0xffu));
}
inline uint8_t trunc_to_u8(float v) {
    return static_cast<uint8_t>(uint32_t(trunc_to_i32(v)) & 0xffu);
}

}  // namespace lcx::quant_detail
