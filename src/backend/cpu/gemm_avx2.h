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

// Float weights (F32, F16, BF16): up to kFloatDotMaxM activation rows use the dot-product
// tiles, more the f32 panels. Decode streams the weights through the dot-product tiles
// once, and a row gets the same bits in any batch of that size, so server slots stepping
// together give exactly what each request gives alone as long as a step (prompt chunks
// included) stays under 64 rows. The panels sum each output in another order (one FMA
// chain over k instead of partial sums), so they take only the large batches of prompt
// processing, where they are 20-45% faster (AVX2).
constexpr int64_t kFloatDotMaxM = 63;

// Rows [n, n + nr) (nr <= 16; the rest zero) of a float weight w (F32, F16 or BF16) as an
// f32 panel P[k][16] (row r of k-step j at P[16 j + r]).
void build_float_panel_avx2(const Tensor& w, int64_t n, int nr, int64_t k, float* P);

// The panel kernel for a weight type, or nullptr when there is none.
MatmulFn gemm_avx2(DType t);

// A path's entry for weight type T: its direct kernel Vec up to kVecMaxM activation rows,
// its panel kernel Gemm(T) beyond. (Vec is local to the path's file, so each instantiation
// is too, compiled with that file's instruction set.)
template <MatmulFn Vec, MatmulFn (*Gemm)(DType), DType T>
void vec_or_panels(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    static const MatmulFn gemm = Gemm(T);
    if (a.m <= kVecMaxM)
        Vec(w, n0, n1, a, y, ys);
    else
        gemm(w, n0, n1, a, y, ys);
}

// Rearranges activation rows [m0, m1) into the tiles the panels read (ActRows::qt, xs); a
// no-op up to kVecMaxM rows, which never reach the panels.
void act_tiles_avx2(ActRows& a, int64_t m0, int64_t m1);

}  // namespace lcx::cpu
