// Internals of the CPU backend shared by the dispatcher and the per-ISA kernel files:
// the converted-activation buffer and the per-path kernel tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "tensor/tensor.h"

namespace lcx::cpu {

// The activation format a weight type's dot product consumes (ggml's vec_dot_type).
enum class ActKind { F32, F16, BF16, Q8_0, Q8_1, Q8_K };
ActKind act_kind_for(DType weight_type);

// M activation rows of length K converted once for one weight type. Only the fields of
// the kind in use are filled. Rows are `K` elements apart in every array (scales/sums:
// K/32, K/16 or K/256 apart).
struct ActRows {
    ActKind kind = ActKind::F32;
    int64_t k = 0;
    int64_t m = 0;
    std::vector<float> f;      // F32, F16 (values rounded through f16), BF16 (rounded)
    std::vector<uint16_t> h;   // BF16 bits (for vdpbf16ps)
    std::vector<int8_t> q;     // Q8_*: the 8-bit quants
    std::vector<float> d;      // Q8_0/Q8_1: scale per 32; Q8_K: scale per 256
    std::vector<float> s32;    // Q8_*: d * (sum of the 32 quants) per 32
    std::vector<float> s16;    // Q8_K: d * (sum of the 16 quants) per 16
    std::vector<int16_t> b16;  // Q8_K: the sum of the 16 quants per 16
    std::vector<int8_t> qt;    // Q8_*: q rearranged for a path's GEMM (KernelTable::act_tiles)
    std::vector<float> ft;     // F32/F16/BF16: f rearranged likewise (paths that use it)
    std::vector<uint32_t> pt;  // BF16: pairs of h rearranged likewise (paths that use it)
    std::vector<int32_t> xs;   // Q8_0/Q8_1: the sum of the 32 quants per 32

    const float* f_row(int64_t i) const { return f.data() + i * k; }
    const uint16_t* h_row(int64_t i) const { return h.data() + i * k; }
    const int8_t* q_row(int64_t i) const { return q.data() + i * k; }
    const float* d_row(int64_t i) const {
        return d.data() + i * (kind == ActKind::Q8_K ? k / 256 : k / 32);
    }
    const float* s32_row(int64_t i) const { return s32.data() + i * (k / 32); }
    const float* s16_row(int64_t i) const { return s16.data() + i * (k / 16); }
    const int16_t* b16_row(int64_t i) const { return b16.data() + i * (k / 16); }
    const int32_t* xs_row(int64_t i) const { return xs.data() + i * (k / 32); }
};

// Fills `a` from M rows of K floats (x rows `x_stride` floats apart), rows [m0, m1) only,
// so threads can share the work; `a` must already be sized by act_resize().
struct KernelTable;
void act_resize(ActRows& a, ActKind kind, int64_t k, int64_t m);
// `fast` (optional): a path's table whose act_row, when set, converts the rows it handles;
// it must produce exactly the reference's bytes.
void act_convert(ActRows& a, const float* x, size_t x_stride, int64_t m0, int64_t m1,
                 const KernelTable* fast = nullptr);

// Computes y[m][n] = dot(W row n, activation m) for rows n in [n0, n1) and all m.
// y rows are `y_stride` floats apart.
using MatmulFn = void (*)(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y,
                          size_t y_stride);

// Per weight type, the kernel of one path (nullptr: the path has none; the dispatcher
// then uses the reference).
// Converts activation row i (x: its K floats) into `a`; false if it does not handle a.kind.
using ActRowFn = bool (*)(ActRows& a, const float* x, int64_t i);

// Writes rows [m0, m1) of a.q into a.qt in the layout the path's GEMM reads (a.qt is
// sized like a.q). Run after act_convert by the same threads, so the rearranged copy is
// made once per input instead of once per weight slice.
using ActTilesFn = void (*)(ActRows& a, int64_t m0, int64_t m1);

// out[i] = silu(g[i]) * u[i] for i < n.
using SwigluFn = void (*)(const float* g, const float* u, float* out, int64_t n);

struct KernelTable {
    static constexpr uint32_t kSlots = kFirstPackedId + 8;
    MatmulFn matmul[kSlots] = {};
    ActRowFn act_row = nullptr;
    ActTilesFn act_tiles = nullptr;
    SwigluFn swiglu = nullptr;
    // F16 weights rounded to bf16 against BF16 activations of more than kFloatDotMaxM rows
    // (CpuBackendOptions::f16_as_bf16), where the path has bf16 products.
    MatmulFn f16_as_bf16 = nullptr;
    MatmulFn get(DType t) const {
        const auto i = uint32_t(t);
        return i < kSlots ? matmul[i] : nullptr;
    }
};

// The scalar reference: weights dequantized with quant/, activations dequantized from
// their 8-bit form, products summed in double. Defines what every fast path computes.
void matmul_ref(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y,
                size_t y_stride);
bool matmul_supported(DType weight_type);
// A packed weight (quant/repack.h) is read a group of rows at a time: throws lcx::Error
// unless [n0, n1) starts and ends on a group. (The dispatcher splits work on such bounds.)
void check_packed_range(const Tensor& w, int64_t n0, int64_t n1);

const KernelTable& kernels_avx512();  // empty table when not built for x86
const KernelTable& kernels_avx2();
void swiglu_avx2(const float* g, const float* u, float* out, int64_t n);

}  // namespace lcx::cpu
