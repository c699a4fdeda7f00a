// AVX2 prompt-shaped products over 8-row interleaved weight panels (gemm_avx2.cpp).
// Meant for many activation rows (matmul_avx2.cpp sends up to kVecMaxM rows to its direct
// kernels instead); correct for any number.
#pragma once

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// The panel kernel for a weight type, or nullptr when there is none.
MatmulFn gemm_avx2(DType t);

// Rearranges activation rows [m0, m1) into the tiles the panels read (ActRows::qt); a
// no-op for the few-row shapes that do not use them. Every gemm_avx2 kernel needs it.
void act_tiles_avx2(ActRows& a, int64_t m0, int64_t m1);

}  // namespace lcx::cpu
