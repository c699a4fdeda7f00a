// Whole-model quantization, as llama.cpp's llama-quantize does it: every weight matrix is
// converted to the type a quantization "mix" (Q4_K_M, Q5_K_S, Q8_0, ...) picks for it by
// role and layer, with fallbacks for rows that are not a multiple of the type's block
// size; norms, biases and other small tensors are copied unchanged. Without an
// importance matrix the result is byte-identical to llama-quantize's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/dtype.h"

namespace lcx {

struct QuantizeModelResult {
    int n_tensors = 0;       // tensors written
    int n_converted = 0;     // tensors whose type changed
    int n_fallback = 0;      // tensors that could not take the mix's type (row length)
    uint64_t bytes_in = 0;   // tensor data read
    uint64_t bytes_out = 0;  // tensor data written
};

// Names accepted as `mix`, llama-quantize's spelling (case-insensitive): F16, BF16, Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q2_K_S, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S,
// Q5_K_M, Q6_K, IQ4_NL, IQ4_XS; and Q3_K / Q4_K / Q5_K for their _M variants.
std::vector<std::string> quantize_mix_names();

// The type `mix` assigns to every tensor of `in_path`, in output order (name, type).
// `pure` gives every quantizable tensor the mix's base type (still falling back where a
// row length forbids it, so that the file stays valid).
std::vector<std::pair<std::string, DType>> plan_quantization(const std::filesystem::path& in_path,
                                                             std::string_view mix, bool pure);

// Reads `in_path` (tensors in F32, F16, BF16 or any type we can dequantize), writes the
// quantized model to `out_path` with all metadata kept, general.file_type set to the mix's
// llama.cpp id and general.quantization_version to 2. Tensors are ordered as llama.cpp
// orders them (non-layer tensors by name, then each layer's by name). `n_threads` <= 0
// means one. Throws lcx::Error on an unknown mix, unreadable input or unsupported type.
QuantizeModelResult quantize_model(const std::filesystem::path& in_path,
                                   const std::filesystem::path& out_path, std::string_view mix,
                                   bool pure, int n_threads);

}  // namespace lcx
