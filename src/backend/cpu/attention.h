// Fused attention of the CPU backend: the scalar reference (one query row at a time) and
// the blocked fast path (a KV head's query heads × a block of tokens against tiles of the
// cache). The dispatcher validates shapes and calls attention_run().
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace lcx::cpu {

// One attention call, validated. Cache row of KV head h, cell c: k + h*k_head_bytes +
// c*k_cell_bytes (a cell's heads adjacent, or, as the KV cache keeps them, a head's cells).
struct AttnArgs {
    const float* q = nullptr;  // [hd, n_head, n_tokens]
    float* out = nullptr;      // [hd * n_head, n_tokens]
    const uint8_t* k = nullptr;
    const uint8_t* v = nullptr;
    size_t k_row_bytes = 0, v_row_bytes = 0;
    size_t k_head_bytes = 0, k_cell_bytes = 0, v_head_bytes = 0, v_cell_bytes = 0;
    DType kt = DType::F32, vt = DType::F32;
    int64_t hd = 0, n_head = 0, n_head_kv = 0, n_tokens = 0, n_kv = 0;
    const int32_t* positions = nullptr;     // n_tokens
    const int32_t* kv_positions = nullptr;  // n_kv, or nullptr: cell c holds position c
    AttentionParams p;

    const uint8_t* k_row(int64_t h, int64_t c) const {
        return k + size_t(h) * k_head_bytes + size_t(c) * k_cell_bytes;
    }
    const uint8_t* v_row(int64_t h, int64_t c) const {
        return v + size_t(h) * v_head_bytes + size_t(c) * v_cell_bytes;
    }
    int32_t cell_pos(int64_t c) const { return kv_positions ? kv_positions[c] : int32_t(c); }
    bool visible(int32_t pos, int32_t cp) const {
        if (cp < 0) return false;
        if (p.causal && cp > pos) return false;
        if (p.sliding_window > 0 && pos - cp >= p.sliding_window) return false;
        return true;
    }
};

// The reference: query rows i in [i0, i1) (i = token * n_head + head), one at a time.
// Q rounded to f16 for an f16 K cache and quantized to Q8_0 for a Q8_0 one (ggml's K·Q
// product), probabilities rounded to f16 for an f16 V cache; softmax sum in double.
void attention_ref_rows(const AttnArgs& a, int64_t i0, int64_t i1);

// The fast path's work item: KV head hk, its query heads [h0, h1) (absolute head indices,
// all in hk's group) and tokens [t0, t1). Every output row is computed the same way
// whatever the item's extent, so results do not depend on how the work is split.
// nullptr when this build/CPU has no fast path, or it cannot take these arguments.
// The AVX2 kernels serve the AVX-512 path too, except that its blocked kernel multiplies
// with the 16-lane products below; both give the same bits.
using AttnBlockFn = void (*)(const AttnArgs& a, int64_t hk, int64_t h0, int64_t h1, int64_t t0,
                             int64_t t1);
AttnBlockFn attention_block(const AttnArgs& a, CpuPath path);

// Runs the whole call on the pool: the path's fast kernel where there is one, else the
// reference.
void attention_run(const AttnArgs& a, CpuPath path, ThreadPool& pool);

// The blocked kernel's per-tile steps on AVX-512 (attention_avx512.cpp), each element
// through the operations of the AVX2 kernel in the same order, so with the same bits:
// - logits of rows i < n (n <= 12) against a K tile kt [hd][16]: the dot products with
//   q[i*hd ..], scaled, soft-capped, set to -inf outside masks[i], stored at s + i*lds,
//   and the row's 8-lane running maximum mx + 8i updated;
// - a row's logits (16 per tile, tiles without `seen` cells skipped) replaced by
//   e^(s - mx), returning their sum;
// - rows i < n of a tile's probabilities p + i*ldp normalized by inv[i] (and rounded to
//   f16 when `f16`), then o[i*hd + j] += sum over c of p[i*ldp + c] * vt[c*hd + j].
void attn_tile_logits_avx512(const float* q, int64_t hd, const float* kt, int n,
                             const AttentionParams& p, const uint16_t* masks, float* s, int64_t lds,
                             float* mx);
double attn_exp_and_sum_avx512(float* s, const uint16_t* seen, int64_t n_tiles, float mx);
void attn_tile_pv_avx512(float* p, int64_t ldp, const float* inv, bool f16, const float* vt,
                         int64_t hd, float* o, int64_t n);
// The decode kernel's logit dot products of nr (8 or 4) query rows q [nr][hd] against the
// 16 cells of a tile, K rows kr[c] (f16 or f32), each the AVX2 kernel's lane-wise FMA chain
// over hd and its fixed tree over the 8 lanes. nr 8: sums[8c + r]; nr 4: sums[8k + 4i + r]
// for cell 2k + i.
void attn_rows_dots_avx512(int nr, const float* q, int64_t hd, const uint8_t* const* kr, bool f16,
                           float* sums);
// The product alone, P of row i and cell c at p[i*ldp + c*pcs] (the decode kernel's
// [cell][row] layout: pcs 8): o[i*hd + j] += sum over c of P(i, c) * vt[c*hd + j].
void attn_rows_pv_avx512(const float* p, int64_t ldp, int64_t pcs, const float* vt, int64_t hd,
                         float* o, int64_t n);

}  // namespace lcx::cpu
