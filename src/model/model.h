// A loaded model: its GGUF file (kept mapped), hyper-parameters, architecture and the
// weights bound as views into the mapping (or packed copies, see load()). Immutable once loaded and
// cheap to share between contexts; all mutable state (KV cache, scratch) lives in the runtime.
#pragma once

#include <filesystem>
#include <memory>

#include "backend/backend.h"
#include "gguf/gguf_file.h"
#include "model/architecture.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace lcx {

class Model {
  public:
    // With a backend, the weights only matmul reads are put in the layout it multiplies
    // fastest (Backend::matmul_layout), once, using its threads; other backends can still
    // run the model, through their reference kernels for that layout.
    static std::shared_ptr<const Model> load(const std::filesystem::path& path,
                                             Backend* backend = nullptr);
    static std::shared_ptr<const Model> from_gguf(gguf::GgufFile file, Backend* backend = nullptr);

    const gguf::GgufFile& file() const { return file_; }
    const HParams& hparams() const { return hp_; }
    const ModelWeights& weights() const { return weights_; }
    const Architecture& architecture() const { return *arch_; }

    // Scratch for passes of up to n_batch tokens; without `logits` there is no logits
    // tensor (n_vocab × n_batch floats) and only passes with !want_logits may use it.
    Workspace make_workspace(Backend& backend, int64_t n_batch, bool logits = true) const;
    // One forward pass (see Architecture::forward).
    void forward(Backend& backend, const ForwardBatch& batch, KvTensors& kv, Workspace& ws) const;

  private:
    Model(gguf::GgufFile file, Backend* backend);

    gguf::GgufFile file_;
    HParams hp_;
    const Architecture* arch_ = nullptr;
    ModelWeights weights_;
};

}  // namespace lcx
