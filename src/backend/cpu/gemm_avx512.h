// AVX-512 VNNI prompt products over the AVX2 path's weight panels (gemm_avx512.cpp).
#pragma once

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// The VNNI panel kernel for a weight type (file layouts only), or nullptr when there is none.
// It reads activations as act_tiles_avx2 leaves them.
MatmulFn gemm_avx512(DType t);

}  // namespace lcx::cpu
