#include "runtime/kv_cache.h"

#include <algorithm>
#include <cassert>

#include "common/error.h"

namespace lcx {

DType parse_cache_type(const std::string& name) {
    auto t = dtype_from_name(name);
    check(t && (*t == DType::F32 || *t == DType::F16 || *t == DType::Q8_0),
          "unsupported KV cache type '" + name + "' (use f32, f16 or q8_0)");
    return *t;
}

KvCache::KvCache(Backend& be, const HParams& hp, int64_t n_ctx, DType type_k, DType type_v)
    : n_ctx_(n_ctx), type_k_(type_k), type_v_(type_v) {
    check(n_ctx > 0, "context size must be positive");
    for (auto [type, dim, which] :
         {std::tuple{type_k, hp.head_dim, "K"}, std::tuple{type_v, hp.head_dim_v, "V"}}) {
        check(type == DType::F32 || type == DType::F16 || type == DType::Q8_0,
              std::string(which) + " cache type " + std::string(dtype_name(type)) +
                  " is not supported (use f32, f16 or q8_0)");
        const int64_t block = traits(type).block_size;
        check(dim % block == 0, std::string(which) + " cache type " +
                                    std::string(dtype_name(type)) + " needs a head dimension " +
                                    "that is a multiple of " + std::to_string(block) +
                                    "; this model's is " + std::to_string(dim));
    }
    // Head-major: a KV head's cells are adjacent, so attention reads each head's rows as
    // one run (cell-major, a decode step read 128 of every 512 bytes, a head at a time:
    // 1.5x slower from memory).
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        tensors_.k.push_back(be.alloc(type_k, {hp.head_dim, n_ctx, hp.n_head_kv}));
        tensors_.v.push_back(be.alloc(type_v, {hp.head_dim_v, n_ctx, hp.n_head_kv}));
    }
    cell_pos_.assign(size_t(n_ctx), -1);
    cell_seq_.assign(size_t(n_ctx), -1);
}

void KvCache::partition(int32_t n_seq, int64_t cells_per_seq) {
    check(n_seq >= 0, "negative number of sequence regions");
    check(n_seq == 0 || (cells_per_seq >= 1 && cells_per_seq <= n_ctx_ / n_seq),
          "the KV cache holds " + std::to_string(n_ctx_) + " cells, not " + std::to_string(n_seq) +
              " regions of " + std::to_string(cells_per_seq));
    clear();
    n_regions_ = n_seq;
    region_cells_ = n_seq > 0 ? cells_per_seq : 0;
}

CellRange KvCache::region_of(int32_t seq) const {
    if (n_regions_ == 0) return {0, n_ctx_};
    if (!(seq >= 0 && seq < n_regions_))
        throw Error("sequence id " + std::to_string(seq) + " has no region in a KV cache of " +
                    std::to_string(n_regions_) + " sequences");
    return {seq * region_cells_, (seq + 1) * region_cells_};
}

int64_t KvCache::find_slot(int32_t seq, int64_t n) const {
    const CellRange region = region_of(seq);
    if (n > n_free())
        throw Error("the context is full: " + std::to_string(n) + " more tokens needed, " +
                    std::to_string(n_free()) + " of " + std::to_string(n_ctx_) +
                    " cells free (raise -c; context shifting is not implemented)");
    // Continuing the sequence keeps its cells one run: what its attention scans.
    if (auto it = seqs_.find(seq); it != seqs_.end() && !it->second.cells.empty()) {
        const int64_t next = it->second.cells.end;
        const auto at = cell_pos_.begin() + next;
        if (next + n <= region.end && std::all_of(at, at + n, [](int32_t p) { return p < 0; }))
            return next;
    }
    int64_t run = 0;
    for (int64_t c = region.begin; c < region.end; ++c) {
        run = cell_pos_[size_t(c)] < 0 ? run + 1 : 0;
        if (run == n) return c - n + 1;
    }
    if (n_regions_ > 0)
        throw Error("the context of sequence " + std::to_string(seq) + " is full: no run of " +
                    std::to_string(n) + " free cells in its region of " +
                    std::to_string(region.size()) +
                    " (raise -c; context shifting is not implemented)");
    throw Error("the KV cache has " + std::to_string(n_free()) + " free cells but no run of " +
                std::to_string(n) + " consecutive ones");
}

void KvCache::assign(int64_t cell, int32_t seq, int32_t pos) {
    assert(cell >= 0 && cell < n_ctx_ && cell_pos_[size_t(cell)] < 0 && pos >= 0);
    ++n_used_;
    cell_pos_[size_t(cell)] = pos;
    cell_seq_[size_t(cell)] = seq;
    SeqCells& s = seqs_[seq];
    if (s.cells.empty())
        s.cells = {cell, cell + 1};
    else
        s.cells = {std::min(s.cells.begin, cell), std::max(s.cells.end, cell + 1)};
    s.max_pos = std::max(s.max_pos, pos);
}

CellRange KvCache::cells_of(int32_t seq) const {
    const auto it = seqs_.find(seq);
    return it == seqs_.end() ? CellRange{} : it->second.cells;
}

void KvCache::positions_of(int32_t seq, CellRange range, std::vector<int32_t>& out) const {
    out.resize(size_t(range.size()));
    for (int64_t c = range.begin; c < range.end; ++c)
        out[size_t(c - range.begin)] = cell_seq_[size_t(c)] == seq ? cell_pos_[size_t(c)] : -1;
}

int32_t KvCache::max_pos(int32_t seq) const {
    const auto it = seqs_.find(seq);
    return it == seqs_.end() ? -1 : it->second.max_pos;
}

void KvCache::clear() {
    std::fill(cell_pos_.begin(), cell_pos_.end(), -1);
    std::fill(cell_seq_.begin(), cell_seq_.end(), -1);
    n_used_ = 0;
    seqs_.clear();
}

void KvCache::remove(int32_t seq, int32_t p0, int32_t p1) {
    const CellRange r = seq >= 0 ? cells_of(seq) : CellRange{0, n_ctx_};
    for (int64_t c = r.begin; c < r.end; ++c) {
        const size_t i = size_t(c);
        if (cell_pos_[i] < 0 || (seq >= 0 && cell_seq_[i] != seq)) continue;
        if (cell_pos_[i] < p0 || (p1 >= 0 && cell_pos_[i] >= p1)) continue;
        cell_pos_[i] = -1;
        cell_seq_[i] = -1;
        --n_used_;
    }
    if (seq >= 0) {
        if (auto it = seqs_.find(seq); it != seqs_.end()) recount(seq, it->second);
    } else {
        for (auto& [id, s] : seqs_) recount(id, s);
    }
}

void KvCache::recount(int32_t seq, SeqCells& s) const {
    SeqCells now;
    for (int64_t c = s.cells.begin; c < s.cells.end; ++c) {
        if (cell_seq_[size_t(c)] != seq) continue;
        if (now.cells.empty()) now.cells.begin = c;
        now.cells.end = c + 1;
        now.max_pos = std::max(now.max_pos, cell_pos_[size_t(c)]);
    }
    s = now;
}

size_t KvCache::n_bytes() const {
    size_t total = 0;
    for (const auto& t : tensors_.k) total += t.n_bytes();
    for (const auto& t : tensors_.v) total += t.n_bytes();
    return total;
}

}  // namespace lcx
