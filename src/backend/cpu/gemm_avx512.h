// AVX-512 VNNI prompt products over the AVX2 path's weight panels (gemm_avx512.cpp).
#pragma once

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// The VNNI panel kernel for a weight type (a file layout, or a packed one with panels built
// from the packed rows), or nullptr when there is none.
// It reads activations as act_tiles_avx2 leaves them.
MatmulFn gemm_avx512(DType t);

// The AVX-512 decode kernel of a packed layout (packed_avx512.cpp; up to kVecMaxM
// activation rows), or nullptr where the path uses the AVX2 path's.
MatmulFn packed_vec_avx512(DType packed);

// Prompt products (more than kFloatDotMaxM activation rows, K even) of BF16 weights, or of
// F16 weights rounded to bf16 (kF16), with vdpbf16ps over panels each thread transposes
// (bf16_avx512.cpp). Activations: BF16, in the tiles of ActRows::pt (act_tiles_avx512).
template <bool kF16>
void bf16_panel_matmul(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y,
                       size_t ys);

}  // namespace lcx::cpu
