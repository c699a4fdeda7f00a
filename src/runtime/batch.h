// A batch of tokens for one decode call: each entry says which token, at which position
// of which sequence, and whether its logits are wanted. Several sequences may share a
// batch (the server's many conversations); the context keeps their KV cells apart.
#pragma once

#include <cstdint>
#include <vector>

namespace lcx {

struct BatchEntry {
    int32_t token = 0;
    int32_t pos = 0;
    int32_t seq = 0;
    bool want_logits = false;
};

class Batch {
  public:
    void add(int32_t token, int32_t pos, int32_t seq, bool want_logits) {
        entries_.push_back({token, pos, seq, want_logits});
    }
    // Appends `tokens` for one sequence at consecutive positions from `first_pos`; only
    // the last one wants logits unless `all_logits`.
    template <class Range>
    void add_sequence(const Range& tokens, int32_t first_pos, int32_t seq,
                      bool all_logits = false) {
        const size_t n = std::size(tokens);
        size_t i = 0;
        for (int32_t t : tokens) {
            add(t, first_pos + int32_t(i), seq, all_logits || i + 1 == n);
            ++i;
        }
    }
    void clear() { entries_.clear(); }
    size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    const BatchEntry& operator[](size_t i) const { return entries_[i]; }
    const std::vector<BatchEntry>& entries() const { return entries_; }

  private:
    std::vector<BatchEntry> entries_;
};

}  // namespace lcx
