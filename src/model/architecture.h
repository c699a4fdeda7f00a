// An architecture is what varies between model families: how hyper-parameters are
// completed, which tensors exist, and the forward pass. Each lives in one file
// (arch_<name>.cpp) built from the shared blocks in blocks.h, and is listed in the
// registry in architecture.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace lcx {

namespace gguf {
class GgufFile;
}
class WeightBinder;

class Architecture {
  public:
    virtual ~Architecture() = default;

    virtual std::string_view name() const = 0;
    // Fills in what read_hparams() cannot know (RoPE mode, family defaults) and checks
    // that the values make sense for this family.
    virtual void complete_hparams(const gguf::GgufFile& file, HParams& hp) const = 0;
    virtual ModelWeights bind_weights(WeightBinder& binder, const HParams& hp) const = 0;
    // One pass over `batch`: appends the batch's K/V to `kv`, leaves the output-normed
    // hidden rows of batch.outputs in the first rows of ws.out_rows and, unless
    // !batch.want_logits, writes their logits into the first rows of ws.logits.
    virtual void forward(Backend& backend, const HParams& hp, const ModelWeights& w,
                         const ForwardBatch& batch, KvTensors& kv, Workspace& ws) const = 0;
};

// The architecture called `name` (general.architecture); throws lcx::Error naming it and
// the supported ones when there is none.
const Architecture& find_architecture(std::string_view name);
std::vector<std::string_view> supported_architectures();

// One accessor per architecture file (the registry's entries).
const Architecture& llama_architecture();
const Architecture& qwen2_architecture();
const Architecture& gemma_architecture();
const Architecture& gemma2_architecture();
const Architecture& phi3_architecture();
const Architecture& starcoder2_architecture();

}  // namespace lcx
