// Qwen2: the LLaMA layout with biases on the Q/K/V projections and rotary embeddings on
// the two halves of each head (NeoX style), usually with a large rope.freq_base. The
// forward pass is LLaMA's; only the metadata and the required biases differ.
#include "model/arch_llama.h"
#include "model/architecture.h"

namespace lcx {

namespace {

class Qwen2Architecture final : public Architecture {
  public:
    std::string_view name() const override { return "qwen2"; }

    void complete_hparams(const gguf::GgufFile&, HParams& hp) const override {
        hp.rope_mode = RopeMode::NeoX;
    }

    ModelWeights bind_weights(WeightBinder& b, const HParams& hp) const override {
        return bind_llama_weights(b, hp, QkvBias::Required);
    }

    void forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                 KvTensors& kv, Workspace& ws) const override {
        llama_forward(be, hp, w, batch, kv, ws);
    }
};

}  // namespace

const Architecture& qwen2_architecture() {
    static const Qwen2Architecture arch;
    return arch;
}

}  // namespace lcx
