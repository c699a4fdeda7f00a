// LLaMA (1, 2, 3 and the many models that share its layout): pre-norm decoder with
// RMSNorm, rotary embeddings on adjacent pairs, grouped-query attention and a SwiGLU
// feed-forward block.
#include "model/arch_llama.h"

#include <cmath>

#include "common/error.h"
#include "model/architecture.h"
#include "model/blocks.h"

namespace lcx {

ModelWeights bind_llama_weights(WeightBinder& b, const HParams& hp, QkvBias qkv_bias) {
    ModelWeights w = bind_embeddings_and_output(b, hp, /*norm_bias=*/false);
    for (int64_t i = 0; i < hp.n_layer; ++i) {
        auto name = [&](const char* s) { return WeightBinder::layer_name(i, s); };
        auto bias = [&](const char* s, int64_t n) {
            // Some LLaMA-layout files carry Q/K/V biases; Qwen2 always does.
            return qkv_bias == QkvBias::Required ? b.require(name(s), {n})
                                                 : b.optional(name(s), {n});
        };
        LayerWeights& l = w.layers[size_t(i)];
        l.attn_norm = b.require(name("attn_norm.weight"), {hp.n_embd});
        l.wq = b.require(name("attn_q.weight"), {hp.n_embd, hp.n_embd_q()});
        l.wk = b.require(name("attn_k.weight"), {hp.n_embd, hp.n_embd_k()});
        l.wv = b.require(name("attn_v.weight"), {hp.n_embd, hp.n_embd_v()});
        l.bq = bias("attn_q.bias", hp.n_embd_q());
        l.bk = bias("attn_k.bias", hp.n_embd_k());
        l.bv = bias("attn_v.bias", hp.n_embd_v());
        l.wo = b.require(name("attn_output.weight"), {hp.n_embd_q(), hp.n_embd});
        l.ffn_norm = b.require(name("ffn_norm.weight"), {hp.n_embd});
        l.ffn_gate = b.require(name("ffn_gate.weight"), {hp.n_embd, hp.n_ff});
        l.ffn_up = b.require(name("ffn_up.weight"), {hp.n_embd, hp.n_ff});
        l.ffn_down = b.require(name("ffn_down.weight"), {hp.n_ff, hp.n_embd});
    }
    return w;
}

void llama_forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                   KvTensors& kv, Workspace& ws) {
    const int64_t n = int64_t(batch.tokens.size());
    Tensor x = first_rows(ws.x, n);
    auto [cur, q, k, v, attn, proj, gate, up] = block_activations(hp, ws, n);

    AttentionParams ap;
    ap.scale = 1.0f / std::sqrt(float(hp.head_dim));

    be.get_rows(w.tok_embd, batch.tokens, x);
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        const LayerWeights& l = w.layers[size_t(il)];

        // attention block
        rms_norm_mul(be, x, l.attn_norm, hp.norm_eps, cur);
        project_qkv(be, l, cur, q, k, v);

        attention_over_cache(be, hp, batch, q, k, v, kv.k[size_t(il)], kv.v[size_t(il)], ap, attn);
        be.matmul(l.wo, attn, proj);
        be.add(x, proj, x);

        // feed-forward block
        rms_norm_mul(be, x, l.ffn_norm, hp.norm_eps, cur);
        ffn_glu(be, l, Glu::Silu, cur, gate, up, proj);
        be.add(x, proj, x);
    }

    // Final norm, and the output projection for the rows whose logits are wanted.
    output_head(be, hp, w, batch, x, ws);
}

namespace {

class LlamaArchitecture final : public Architecture {
  public:
    std::string_view name() const override { return "llama"; }

    void complete_hparams(const gguf::GgufFile&, HParams& hp) const override {
        hp.rope_mode = RopeMode::Normal;
    }

    ModelWeights bind_weights(WeightBinder& b, const HParams& hp) const override {
        return bind_llama_weights(b, hp, QkvBias::Optional);
    }

    void forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                 KvTensors& kv, Workspace& ws) const override {
        llama_forward(be, hp, w, batch, kv, ws);
    }
};

}  // namespace

const Architecture& llama_architecture() {
    static const LlamaArchitecture arch;
    return arch;
}

}  // namespace lcx
