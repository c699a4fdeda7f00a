// AVX2 prompt-shaped products over 8-row interleaved weight panels (gemm_avx2.cpp).
// Meant for many activation rows; formats without a direct decode kernel use them for
// every shape.
#pragma once

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// The panel kernel for a weight type, or nullptr when there is none.
MatmulFn gemm_avx2(DType t);

}  // namespace lcx::cpu
