#include "model/model.h"

#include <algorithm>

#include "common/error.h"
#include "common/log.h"
#include "model/weight_binder.h"
#include "model/weight_repack.h"

namespace lcx {

Model::Model(gguf::GgufFile file, Backend* backend) : file_(std::move(file)) {
    hp_ = read_hparams(file_);
    arch_ = &find_architecture(hp_.arch);
    const gguf::TensorInfo* embd = file_.find_tensor("token_embd.weight");
    check(embd != nullptr && embd->shape.size() >= 2,
          file_.path() + ": missing tensor 'token_embd.weight'");
    hp_.n_vocab = embd->shape[1];
    arch_->complete_hparams(file_, hp_);
    WeightBinder binder(file_);
    weights_ = arch_->bind_weights(binder, hp_);
    for (const auto& name : binder.unused())
        log::warn("%s: tensor '%s' is not used by the %s architecture", file_.path().c_str(),
                  name.c_str(), hp_.arch.c_str());
    if (backend) {
        const RepackStats st = repack_weights(weights_, file_, *backend);
        if (st.tensors > 0)
            log::debug("%s: %lld weights packed for %s (%.1f MiB, %.1f MiB in the file)",
                       file_.path().c_str(), static_cast<long long>(st.tensors),
                       backend->name().c_str(), double(st.bytes) / (1 << 20),
                       double(st.file_bytes) / (1 << 20));
    }
}

std::shared_ptr<const Model> Model::load(const std::filesystem::path& path, Backend* backend) {
    return from_gguf(gguf::GgufFile::open(path), backend);
}

std::shared_ptr<const Model> Model::from_gguf(gguf::GgufFile file, Backend* backend) {
    return std::shared_ptr<const Model>(new Model(std::move(file), backend));
}

Workspace Model::make_workspace(Backend& be, int64_t n_batch, bool logits) const {
    Workspace ws;
    ws.n_batch = n_batch;
    ws.x = be.alloc(DType::F32, {hp_.n_embd, n_batch});
    const int64_t wide = std::max(hp_.n_embd, hp_.n_embd_q());
    ws.cur = be.alloc(DType::F32, {wide, n_batch});
    ws.q = be.alloc(DType::F32, {wide, n_batch});
    ws.k = be.alloc(DType::F32, {hp_.n_embd_k(), n_batch});
    ws.v = be.alloc(DType::F32, {hp_.n_embd_v(), n_batch});
    ws.gate = be.alloc(DType::F32, {hp_.n_ff, n_batch});
    ws.up = be.alloc(DType::F32, {hp_.n_ff, n_batch});
    ws.out_rows = be.alloc(DType::F32, {hp_.n_embd, n_batch});
    if (logits) ws.logits = be.alloc(DType::F32, {hp_.n_vocab, n_batch});
    return ws;
}

void Model::forward(Backend& backend, const ForwardBatch& batch, KvTensors& kv,
                    Workspace& ws) const {
    if (!(int64_t(batch.tokens.size()) <= ws.n_batch))
        throw Error("batch of " + std::to_string(batch.tokens.size()) +
                    " tokens is larger than the context's batch size " +
                    std::to_string(ws.n_batch));
    if (batch.want_logits && !batch.outputs.empty() && ws.logits.empty())
        throw Error("this context was made for embeddings only and keeps no logits");
    for (int32_t t : batch.tokens)
        if (!(t >= 0 && t < hp_.n_vocab))
            throw Error("token id " + std::to_string(t) + " is outside the vocabulary (" +
                        std::to_string(hp_.n_vocab) + " tokens)");
    arch_->forward(backend, hp_, weights_, batch, kv, ws);
}

}  // namespace lcx
