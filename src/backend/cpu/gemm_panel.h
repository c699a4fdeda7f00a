// The interleaved weight panels of the prompt GEMM (built in gemm_avx2.cpp, see there), as
// another path's tile reads them: the AVX-512 path (gemm_avx512.cpp) multiplies the same
// panels and activation tiles with VNNI instead of building its own.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// Activation rows per tile of ActRows::qt (act_tiles_avx2).
constexpr int kActTile = 4;

// Where a panel keeps a type's minimum term: none, per 32 weights or per 16.
enum class PanelMin { None, Per32, Per16 };

// What a tile must know of a weight type to read its panels:
//  - is_signed: qs holds |w| and sg holds w (else qs holds unsigned quants, sg is unused);
//  - scale16:   an int16 scale per 16 weights in sc (half 0 and 1 of a block);
//  - super:     an int16 scale per block in sc (half 0); the block sums times their scales
//               are summed over a 256-weight super-block before one float step;
//  - dx_shift:  the activation scale of block b is d_row()[b >> dx_shift];
//  - min:       the float mins in wm, multiplied by the activation sums s32/s16;
//  - offset_shift: 0, or q = w + 2^offset_shift and the integer sum loses
//               2^offset_shift times the activations' integer block sum (xs).
struct PanelTraits {
    bool is_signed = false;
    bool scale16 = false;
    bool super = false;
    int dx_shift = 0;
    PanelMin min = PanelMin::None;
    int offset_shift = 0;
};

constexpr PanelTraits panel_traits(DType t) {
    switch (t) {
        case DType::Q4_0:
            return {false, false, false, 0, PanelMin::None, 3};
        case DType::Q5_0:
            return {false, false, false, 0, PanelMin::None, 4};
        case DType::Q4_1:
        case DType::Q5_1:
            return {false, false, false, 0, PanelMin::Per32, 0};
        case DType::Q8_0:
        case DType::IQ4_NL:
            return {true, false, false, 0, PanelMin::None, 0};
        case DType::IQ4_XS:
            return {true, false, true, 3, PanelMin::None, 0};
        case DType::Q4_K:
        case DType::Q5_K:
            return {false, false, true, 3, PanelMin::Per32, 0};
        case DType::Q2_K:
        case DType::Q3_K:
        case DType::Q6_K:
            return {false, true, true, 3, PanelMin::Per16, 0};
        default:
            return {};
    }
}

// One 8-row panel's arrays. Per 32-weight block b:
//   qs[(8b + g) * 32 + 4r + i]  byte i of group g (weights 4g..4g+3) of row r;
//   sg                           the same for signed formats: w itself (qs holds |w|);
//   ws[8b + r]                   row r's float scale;
//   wm[8b + r] or [16b + 8h + r] row r's float min (per block, or per half h);
//   sc[(2b + h) * 32 + 4r]       row r's int16 scale of half h, twice (lanes 2r, 2r + 1).
struct PanelView {
    int64_t nb = 0;
    const uint8_t* qs = nullptr;
    const uint8_t* sg = nullptr;
    const float* ws = nullptr;
    const float* wm = nullptr;
    const uint8_t* sc = nullptr;
};

// The most panels (8 rows each) a PanelRowsFn is given at once.
constexpr int kMaxPanels = 8;

// Activation rows [c0, c1) against the np (1 to kMaxPanels) panels of weight rows
// [n, n + nr): y[c * ys + n + r] for r < nr. Panel i holds rows n + 8i .. n + 8i + 7.
using PanelRowsFn = void (*)(const PanelView* pv, int np, const ActRows& a, int64_t c0, int64_t c1,
                             float* y, size_t ys, int64_t n, int nr);

// The panel GEMM of gemm_avx2.cpp for weight type t (a file layout or a packed one) with
// `rows` in place of its AVX2 tiles. Activations as act_tiles_avx2 leaves them.
void panel_matmul_with(DType t, PanelRowsFn rows, const Tensor& w, int64_t n0, int64_t n1,
                       const ActRows& a, float* y, size_t ys);

}  // namespace lcx::cpu
