// The KV cache: per layer one K and one V tensor of n_ctx cells, plus which sequence and
// position each cell holds. Cells are handed out in contiguous runs; a sequence's cells
// can be dropped (all, or from a position on) to roll a conversation back.
//
// A pass attends, per sequence, the smallest run of cells holding all of that sequence's
// cells (cells_of), so sequences should not interleave: find_slot continues a sequence
// right after its last cell when it can, and partition() gives each of several sequences
// a region of its own, where it stays contiguous however the others grow.
//
// Context shifting (discarding old cells to make room) is not implemented: a request that
// does not fit is an error.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "tensor/dtype.h"

namespace lcx {

// Cells [begin, end) of a cache.
struct CellRange {
    int64_t begin = 0;
    int64_t end = 0;
    int64_t size() const { return end - begin; }
    bool empty() const { return end <= begin; }
    bool operator==(const CellRange&) const = default;
};

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

    // Clears the cache and gives sequences 0 .. n_seq-1 a region each of cells_per_seq
    // cells (sequence s: from cell s * cells_per_seq on); their cells are then taken only
    // from there and other sequence ids are refused. n_seq = 0 undoes it: every sequence
    // may use every cell (the default).
    void partition(int32_t n_seq, int64_t cells_per_seq);
    // The cells `seq` may use: its region, or the whole cache when not partitioned.
    CellRange region_of(int32_t seq) const;

    // `n` consecutive free cells for `seq` (returns the first): right after its last cell
    // when those are free, else the first such run of its region. Throws lcx::Error when
    // there is none.
    int64_t find_slot(int32_t seq, int64_t n) const;
    // Gives a free cell to `seq` at position `pos`.
    void assign(int64_t cell, int32_t seq, int32_t pos);

    // The smallest run of cells holding every cell of `seq` (empty when it has none).
    CellRange cells_of(int32_t seq) const;
    // Per cell of `range`: the position it holds for `seq`, or -1 (empty or another
    // sequence's).
    void positions_of(int32_t seq, CellRange range, std::vector<int32_t>& out) const;
    // Highest position held for `seq`, or -1 when it has none.
    int32_t max_pos(int32_t seq) const;

    // Empties every cell (a partition stays).
    void clear();
    // Frees the cells of `seq` (seq < 0: every sequence) with position in [p0, p1);
    // p1 < 0 means no upper bound.
    void remove(int32_t seq, int32_t p0, int32_t p1 = -1);

    // Bytes held by the K and V tensors.
    size_t n_bytes() const;

  private:
    // What a sequence holds, kept up to date so a pass need not scan the cache for it.
    struct SeqCells {
        CellRange cells;
        int32_t max_pos = -1;
    };
    // Recomputes `s` after cells were freed (they can only shrink its range).
    void recount(int32_t seq, SeqCells& s) const;

    int64_t n_ctx_;
    DType type_k_, type_v_;
    KvTensors tensors_;
    std::vector<int32_t> cell_pos_;  // -1: free
    std::vector<int32_t> cell_seq_;
    int64_t n_used_ = 0;
    std::unordered_map<int32_t, SeqCells> seqs_;
    int32_t n_regions_ = 0;  // 0: not partitioned
    int64_t region_cells_ = 0;
};

// "f32", "f16", "q8_0" (case-insensitive) to a cache type; throws for anything else.
DType parse_cache_type(const std::string& name);

}  // namespace lcx
