#include "runtime/context.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace lcx {

Context::Context(std::shared_ptr<const Model> model, Backend& backend, const ContextParams& params)
    : model_(std::move(model)),
      backend_(backend),
      n_batch_(params.n_batch > 0 ? params.n_batch : 512),
      kv_(backend, model_->hparams(),
          params.n_ctx > 0 ? params.n_ctx : model_->hparams().n_ctx_train, params.type_k,
          params.type_v) {
    n_batch_ = std::min(n_batch_, kv_.n_ctx());
    ws_ = model_->make_workspace(backend_, n_batch_, params.logits);
}

void Context::decode(const Batch& batch, DecodeOutput output) {
    check(!batch.empty(), "decode: empty batch");
    if (output == DecodeOutput::Logits && ws_.logits.empty())
        throw Error("this context was made for embeddings only and keeps no logits");
    if (!(int64_t(batch.size()) <= kv_.n_free()))
        throw Error("the context is full: " + std::to_string(batch.size()) +
                    " tokens to evaluate but " + std::to_string(kv_.n_free()) + " of " +
                    std::to_string(kv_.n_ctx()) +
                    " cells free (raise -c; context shifting is not implemented)");
    const int64_t n_vocab = this->n_vocab();
    for (size_t i = 0; i < batch.size(); ++i) {
        const BatchEntry& e = batch[i];
        if (!(e.token >= 0 && e.token < n_vocab))
            throw Error("token id " + std::to_string(e.token) + " is outside the vocabulary (" +
                        std::to_string(n_vocab) + " tokens)");
        if (!(e.seq >= 0)) throw Error("negative sequence id " + std::to_string(e.seq));
        if (!(e.pos >= 0)) throw Error("negative position " + std::to_string(e.pos));
    }
    size_t n_outputs = 0;
    output_row_.assign(batch.size(), -1);
    for (size_t i = 0; i < batch.size(); ++i)
        if (batch[i].want_logits) output_row_[i] = int32_t(n_outputs++);
    output_ = output;
    logits_.resize(n_outputs * size_t(output == DecodeOutput::Logits ? n_vocab : n_embd()));
    last_batch_size_ = batch.size();

    for (size_t first = 0; first < batch.size(); first += size_t(n_batch_))
        decode_chunk(batch, first, std::min(size_t(n_batch_), batch.size() - first));
}

void Context::decode_chunk(const Batch& batch, size_t first, size_t count) {
    tokens_.clear();
    positions_.clear();
    outputs_.clear();
    for (size_t i = 0; i < count; ++i) {
        const BatchEntry& e = batch[first + i];
        tokens_.push_back(e.token);
        positions_.push_back(e.pos);
        if (e.want_logits) outputs_.push_back(int32_t(i));
    }
    place_groups(batch, first, count);
    fb_.tokens = tokens_;
    fb_.positions = positions_;
    fb_.outputs = outputs_;
    fb_.want_logits = output_ == DecodeOutput::Logits;

    try {
        model_->forward(backend_, fb_, kv_.tensors(), ws_);
    } catch (...) {
        release(batch, first, count);
        throw;
    }

    const bool logits = output_ == DecodeOutput::Logits;
    const Tensor& src = logits ? ws_.logits : ws_.out_rows;
    const size_t width = size_t(logits ? n_vocab() : n_embd());
    for (size_t o = 0; o < outputs_.size(); ++o) {
        const int32_t row = output_row_[first + size_t(outputs_[o])];
        std::memcpy(&logits_[size_t(row) * width], src.row(int64_t(o)), width * sizeof(float));
    }
}

void Context::place_groups(const Batch& batch, size_t first, size_t count) {
    std::vector<AttentionGroup>& groups = fb_.groups;
    groups.clear();
    group_seq_.clear();
    size_t placed = 0;
    try {
        for (size_t i = 0; i < count;) {
            const int32_t seq = batch[first + i].seq;
            size_t j = i;
            while (j < count && batch[first + j].seq == seq) ++j;
            AttentionGroup g;
            g.first_token = int64_t(i);
            g.n_tokens = int64_t(j - i);
            g.first_cell = kv_.find_slot(seq, g.n_tokens);
            for (; placed < j; ++placed)
                kv_.assign(g.first_cell + int64_t(placed - i), seq, batch[first + placed].pos);
            groups.push_back(g);
            group_seq_.push_back(seq);
            i = j;
        }
    } catch (...) {
        release(batch, first, placed);
        throw;
    }
    // Looked up once every run is placed: a sequence may have several runs in a chunk,
    // and each sees all of them (the causal mask orders them by position).
    if (kv_positions_.size() < groups.size()) kv_positions_.resize(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
        const CellRange cells = kv_.cells_of(group_seq_[g]);
        kv_.positions_of(group_seq_[g], cells, kv_positions_[g]);
        groups[g].kv_begin = cells.begin;
        groups[g].kv_positions = kv_positions_[g];
    }
}

void Context::release(const Batch& batch, size_t first, size_t count) {
    for (size_t i = first; i < first + count; ++i)
        kv_.remove(batch[i].seq, batch[i].pos, batch[i].pos + 1);
}

std::span<const float> Context::output_row(int32_t i, DecodeOutput kind, const char* what) const {
    const int64_t idx = i < 0 ? int64_t(last_batch_size_) + i : i;
    if (!(output_ == kind && idx >= 0 && idx < int64_t(last_batch_size_) &&
          output_row_[size_t(idx)] >= 0))
        throw Error(std::string("no ") + what + " for batch entry " + std::to_string(i));
    const size_t width = size_t(kind == DecodeOutput::Logits ? n_vocab() : n_embd());
    return {&logits_[size_t(output_row_[size_t(idx)]) * width], width};
}

std::span<const float> Context::logits(int32_t i) const {
    return output_row(i, DecodeOutput::Logits, "logits");
}

std::span<const float> Context::embedding(int32_t i) const {
    return output_row(i, DecodeOutput::Embeddings, "embedding");
}

}  // namespace lcx
