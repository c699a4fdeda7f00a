// AVX2 prompt-shaped products over 8-row interleaved weight panels (gemm_avx2.cpp), for
// more than kVecMaxM activation rows; matmul_avx2.cpp's direct kernels take fewer.
#pragma once

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// Up to kVecMaxM activation rows use the direct kernels, more the panels. A panel costs an
// unpack and a transpose per 8 rows, which few activation rows do not repay: at 5632 x 2048
// on 2 threads the direct kernels measured 1.3-2.5x the panels' GFLOP/s for 3 to 6 rows; at
// 8 the panels lead for Q4_0 and Q4_K.
constexpr int64_t kVecMaxM = 6;

// The panel kernel for a weight type, or nullptr when there is none.
MatmulFn gemm_avx2(DType t);

// Rearranges activation rows [m0, m1) into the tiles the panels read (ActRows::qt, xs); a
// no-op up to kVecMaxM rows, which never reach the panels.
void act_tiles_avx2(ActRows& a, int64_t m0, int64_t m1);

}  // namespace lcx::cpu
