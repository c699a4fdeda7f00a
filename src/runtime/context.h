// A decode context: one model, one backend, a KV cache and the scratch of a forward pass.
// decode() evaluates a batch (in chunks of n_batch tokens, each one batched pass) and
// keeps the logits (or, for embeddings, the final-normed hidden states) of the entries
// that asked for them.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/kv_cache.h"

namespace lcx {

struct ContextParams {
    int64_t n_ctx = 0;  // 0: the model's training context
    int64_t n_batch = 512;
    DType type_k = DType::F16;
    DType type_v = DType::F16;
    // false: only DecodeOutput::Embeddings decodes, and no n_vocab-wide scratch is held.
    bool logits = true;
};

// What decode() keeps for the entries with want_logits.
enum class DecodeOutput {
    Logits,      // n_vocab scores each
    Embeddings,  // the last hidden state after the output norm, n_embd floats each; the
                 // output projection is skipped
};

class Context {
  public:
    Context(std::shared_ptr<const Model> model, Backend& backend, const ContextParams& params);

    const Model& model() const { return *model_; }
    const std::shared_ptr<const Model>& shared_model() const { return model_; }
    Backend& backend() { return backend_; }
    KvCache& kv_cache() { return kv_; }
    int64_t n_ctx() const { return kv_.n_ctx(); }
    int64_t n_batch() const { return n_batch_; }
    int64_t n_vocab() const { return model_->hparams().n_vocab; }
    int64_t n_embd() const { return model_->hparams().n_embd; }

    // Evaluates every entry of `batch`. Throws lcx::Error (leaving the cache as it was
    // before the failing chunk) when the tokens do not fit the context.
    void decode(const Batch& batch, DecodeOutput output = DecodeOutput::Logits);
    // Logits of batch entry `i` of the last decode() (negative: counted from the end);
    // the entry must have asked for them and the decode must have kept logits.
    std::span<const float> logits(int32_t i = -1) const;
    // Final-normed hidden state of batch entry `i` of the last decode(), which must have
    // been a DecodeOutput::Embeddings one.
    std::span<const float> embedding(int32_t i = -1) const;

    // Next free position of a sequence (0 when it is empty).
    int32_t next_pos(int32_t seq = 0) const { return kv_.max_pos(seq) + 1; }
    // Forgets a sequence's tokens from position p0 on (-1: the whole sequence).
    void truncate(int32_t seq, int32_t p0) { kv_.remove(seq, std::max(p0, 0)); }
    void clear() { kv_.clear(); }

  private:
    void decode_chunk(const Batch& batch, size_t first, size_t count);
    // Splits entries [first, first + count) into runs of one sequence (fb_.groups), gives
    // each run consecutive cells of its sequence and the range of cells it attends.
    // Leaves nothing assigned when a run does not fit (and throws lcx::Error).
    void place_groups(const Batch& batch, size_t first, size_t count);
    // Frees the cells of entries [first, first + count).
    void release(const Batch& batch, size_t first, size_t count);
    std::span<const float> output_row(int32_t i, DecodeOutput kind, const char* what) const;

    std::shared_ptr<const Model> model_;
    Backend& backend_;
    int64_t n_batch_;
    KvCache kv_;
    Workspace ws_;

    // Reused between calls so decoding does not allocate in the steady state.
    std::vector<int32_t> tokens_, positions_, outputs_;
    ForwardBatch fb_;
    std::vector<std::vector<int32_t>> kv_positions_;  // per group
    std::vector<int32_t> group_seq_;
    std::vector<float> logits_;  // one row per output (n_vocab or n_embd wide)
    DecodeOutput output_ = DecodeOutput::Logits;
    std::vector<int32_t> output_row_;  // batch index -> row of logits_, or -1
    size_t last_batch_size_ = 0;
};

}  // namespace lcx
