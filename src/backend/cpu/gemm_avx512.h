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

}  // namespace lcx::cpu
