// The KV cache: per layer one K and one V tensor of n_ctx cells, plus which sequence and
// position each cell holds. Cells are handed out in contiguous runs; a sequence's cells
// can be dropped (all, or from a position on) to roll a conversation back.
//
// Context shifting (discarding old cells to make room) is not implemented: a request that
// does not fit is an error.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "tensor/dtype.h"

namespace lcx {

class KvCache {
  public:
    // type_k / type_v: F32, F16 or Q8_0 (Q8_0 needs head_dim a multiple of 32).
    KvCache(Backend& backend, const HParams& hp, int64_t n_ctx, DType type_k, DType type_v);

    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_used() const { return n_used_; }
    int64_t n_free() const { return n_ctx_ - n_used_; }
    DType type_k() const { return type_k_; }
    DType type_v() const { return type_v_; }
    KvTensors& tensors() { return tensors_; }

    // Reserves `n` consecutive free cells and returns the first; throws lcx::Error when
    // there is no such run.
    int64_t find_slot(int64_t n) const;
    void assign(int64_t cell, int32_t seq, int32_t pos);

    // One past the last used cell: the cells a pass has to look at.
    int64_t n_kv() const;
    // Per cell: the position it holds for `seq`, or -1 (empty or another sequence's).
    void positions_of(int32_t seq, std::vector<int32_t>& out) const;
    // Highest position held for `seq`, or -1 when it has none.
    int32_t max_pos(int32_t seq) const;

    void clear();
    // Frees the cells of `seq` (seq < 0: every sequence) with position in [p0, p1);
    // p1 < 0 means no upper bound.
    void remove(int32_t seq, int32_t p0, int32_t p1 = -1);

    // Bytes held by the K and V tensors.
    size_t n_bytes() const;

  private:
    int64_t n_ctx_;
    DType type_k_, type_v_;
    KvTensors tensors_;
    std::vector<int32_t> cell_pos_;  // -1: free
    std::vector<int32_t> cell_seq_;
    int64_t n_used_ = 0;
};

// "f32", "f16", "q8_0" (case-insensitive) to a cache type; throws for anything else.
DType parse_cache_type(const std::string& name);

}  // namespace lcx
