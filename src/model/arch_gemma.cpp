// Gemma: pre-norm decoder with RMSNorm, NeoX-style rotary embeddings, a gated-GELU
// feed-forward block, the token embeddings scaled by sqrt(n_embd) on the way in and reused
// as the output projection. The head dimension comes from attention.key_length (it need
// not be n_embd / n_head). GGUF files hold Gemma's norm weights with the +1 of its
// RMSNorm already added by the converter, so they multiply as they are.
#include <cmath>

#include "model/architecture.h"
#include "model/blocks.h"
#include "model/weight_binder.h"

namespace lcx {

namespace {

class GemmaArchitecture final : public Architecture {
  public:
    std::string_view name() const override { return "gemma"; }

    void complete_hparams(const gguf::GgufFile&, HParams& hp) const override {
        hp.rope_mode = RopeMode::NeoX;
    }

    ModelWeights bind_weights(WeightBinder& b, const HParams& hp) const override {
        ModelWeights w = bind_embeddings_and_output(b, hp, /*norm_bias=*/false);
        for (int64_t i = 0; i < hp.n_layer; ++i) {
            auto name = [&](const char* s) { return WeightBinder::layer_name(i, s); };
            LayerWeights& l = w.layers[size_t(i)];
            l.attn_norm = b.require(name("attn_norm.weight"), {hp.n_embd});
            l.wq = b.require(name("attn_q.weight"), {hp.n_embd, hp.n_embd_q()});
            l.wk = b.require(name("attn_k.weight"), {hp.n_embd, hp.n_embd_k()});
            l.wv = b.require(name("attn_v.weight"), {hp.n_embd, hp.n_embd_v()});
            l.wo = b.require(name("attn_output.weight"), {hp.n_embd_q(), hp.n_embd});
            l.ffn_norm = b.require(name("ffn_norm.weight"), {hp.n_embd});
            l.ffn_gate = b.require(name("ffn_gate.weight"), {hp.n_embd, hp.n_ff});
            l.ffn_up = b.require(name("ffn_up.weight"), {hp.n_embd, hp.n_ff});
            l.ffn_down = b.require(name("ffn_down.weight"), {hp.n_ff, hp.n_embd});
        }
        return w;
    }

    void forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                 KvTensors& kv, Workspace& ws) const override {
        const int64_t n = int64_t(batch.tokens.size());
        Tensor x = first_rows(ws.x, n);
        auto [cur, q, k, v, attn, proj, gate, up] = block_activations(hp, ws, n);

        // llama.cpp scales the rotated queries, not the attention logits.
        const float q_scale = 1.0f / std::sqrt(float(hp.head_dim));
        AttentionParams ap;
        ap.scale = 1.0f;

        be.get_rows(w.tok_embd, batch.tokens, x);
        be.scale(x, std::sqrt(float(hp.n_embd)), x);
        for (int64_t il = 0; il < hp.n_layer; ++il) {
            const LayerWeights& l = w.layers[size_t(il)];

            // attention block
            rms_norm_mul(be, x, l.attn_norm, hp.norm_eps, cur);
            project_qkv(be, l, cur, q, k, v);
            attention_over_cache(be, hp, batch, q, k, v, kv.k[size_t(il)], kv.v[size_t(il)], ap,
                                 attn, q_scale);
            be.matmul(l.wo, attn, proj);
            be.add(x, proj, x);

            // feed-forward block
            rms_norm_mul(be, x, l.ffn_norm, hp.norm_eps, cur);
            ffn_glu(be, l, Glu::Gelu, cur, gate, up, proj);
            be.add(x, proj, x);
        }

        output_head(be, hp, w, batch, x, ws);
    }
};

}  // namespace

const Architecture& gemma_architecture() {
    static const GemmaArchitecture arch;
    return arch;
}

}  // namespace lcx
