#include "runtime/kv_cache.h"

#include <algorithm>

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
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        tensors_.k.push_back(be.alloc(type_k, {hp.head_dim, hp.n_head_kv, n_ctx}));
        tensors_.v.push_back(be.alloc(type_v, {hp.head_dim_v, hp.n_head_kv, n_ctx}));
    }
    cell_pos_.assign(size_t(n_ctx), -1);
    cell_seq_.assign(size_t(n_ctx), -1);
}

int64_t KvCache::find_slot(int64_t n) const {
    if (n > n_free())
        throw Error("the context is full: " + std::to_string(n) + " more tokens needed, " +
                    std::to_string(n_free()) + " of " + std::to_string(n_ctx_) +
                    " cells free (raise -c; context shifting is not implemented)");
    int64_t run = 0;
    for (int64_t c = 0; c < n_ctx_; ++c) {
        run = cell_pos_[size_t(c)] < 0 ? run + 1 : 0;
        if (run == n) return c - n + 1;
    }
    throw Error("the KV cache has " + std::to_string(n_free()) + " free cells but no run of " +
                std::to_string(n) + " consecutive ones");
}

void KvCache::assign(int64_t cell, int32_t seq, int32_t pos) {
    if (cell_pos_[size_t(cell)] < 0) ++n_used_;
    cell_pos_[size_t(cell)] = pos;
    cell_seq_[size_t(cell)] = seq;
}

int64_t KvCache::n_kv() const {
    for (int64_t c = n_ctx_; c > 0; --c)
        if (cell_pos_[size_t(c - 1)] >= 0) return c;
    return 0;
}

void KvCache::positions_of(int32_t seq, std::vector<int32_t>& out) const {
    out.resize(size_t(n_ctx_));
    for (size_t c = 0; c < out.size(); ++c) out[c] = cell_seq_[c] == seq ? cell_pos_[c] : -1;
}

int32_t KvCache::max_pos(int32_t seq) const {
    int32_t m = -1;
    for (size_t c = 0; c < cell_pos_.size(); ++c)
        if (cell_seq_[c] == seq) m = std::max(m, cell_pos_[c]);
    return m;
}

void KvCache::clear() {
    std::fill(cell_pos_.begin(), cell_pos_.end(), -1);
    std::fill(cell_seq_.begin(), cell_seq_.end(), -1);
    n_used_ = 0;
}

void KvCache::remove(int32_t seq, int32_t p0, int32_t p1) {
    for (size_t c = 0; c < cell_pos_.size(); ++c) {
        if (cell_pos_[c] < 0 || (seq >= 0 && cell_seq_[c] != seq)) continue;
        if (cell_pos_[c] < p0 || (p1 >= 0 && cell_pos_[c] >= p1)) continue;
        cell_pos_[c] = -1;
        cell_seq_[c] = -1;
        --n_used_;
    }
}

size_t KvCache::n_bytes() const {
    size_t total = 0;
    for (const auto& t : tensors_.k) total += t.n_bytes();
    for (const auto& t : tensors_.v) total += t.n_bytes();
    return total;
}

}  // namespace lcx
