// StarCoder2: pre-norm decoder with LayerNorm (weight and bias), biases on every linear
// map, NeoX-style rotary embeddings, grouped-query attention and a plain (non-gated)
// GELU feed-forward block.
#include <cmath>

#include "model/architecture.h"
#include "model/blocks.h"
#include "model/weight_binder.h"

namespace lcx {

namespace {

class StarCoder2Architecture final : public Architecture {
  public:
    std::string_view name() const override { return "starcoder2"; }

    void complete_hparams(const gguf::GgufFile&, HParams& hp) const override {
        hp.rope_mode = RopeMode::NeoX;
    }

    ModelWeights bind_weights(WeightBinder& b, const HParams& hp) const override {
        ModelWeights w = bind_embeddings_and_output(b, hp, /*norm_bias=*/true);
        for (int64_t i = 0; i < hp.n_layer; ++i) {
            auto name = [&](const char* s) { return WeightBinder::layer_name(i, s); };
            LayerWeights& l = w.layers[size_t(i)];
            l.attn_norm = b.require(name("attn_norm.weight"), {hp.n_embd});
            l.attn_norm_b = b.require(name("attn_norm.bias"), {hp.n_embd});
            l.wq = b.require(name("attn_q.weight"), {hp.n_embd, hp.n_embd_q()});
            l.wk = b.require(name("attn_k.weight"), {hp.n_embd, hp.n_embd_k()});
            l.wv = b.require(name("attn_v.weight"), {hp.n_embd, hp.n_embd_v()});
            l.bq = b.require(name("attn_q.bias"), {hp.n_embd_q()});
            l.bk = b.require(name("attn_k.bias"), {hp.n_embd_k()});
            l.bv = b.require(name("attn_v.bias"), {hp.n_embd_v()});
            l.wo = b.require(name("attn_output.weight"), {hp.n_embd_q(), hp.n_embd});
            l.bo = b.require(name("attn_output.bias"), {hp.n_embd});
            l.ffn_norm = b.require(name("ffn_norm.weight"), {hp.n_embd});
            l.ffn_norm_b = b.require(name("ffn_norm.bias"), {hp.n_embd});
            l.ffn_up = b.require(name("ffn_up.weight"), {hp.n_embd, hp.n_ff});
            l.ffn_up_b = b.require(name("ffn_up.bias"), {hp.n_ff});
            l.ffn_down = b.require(name("ffn_down.weight"), {hp.n_ff, hp.n_embd});
            l.ffn_down_b = b.require(name("ffn_down.bias"), {hp.n_embd});
        }
        return w;
    }

    void forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                 KvTensors& kv, Workspace& ws) const override {
        const int64_t n = int64_t(batch.tokens.size());
        Tensor x = first_rows(ws.x, n);
        auto [cur, q, k, v, attn, proj, gate, up] = block_activations(hp, ws, n);

        AttentionParams ap;
        ap.scale = 1.0f / std::sqrt(float(hp.head_dim));

        be.get_rows(w.tok_embd, batch.tokens, x);
        for (int64_t il = 0; il < hp.n_layer; ++il) {
            const LayerWeights& l = w.layers[size_t(il)];

            // attention block
            layer_norm_affine(be, x, l.attn_norm, l.attn_norm_b, hp.norm_eps, cur);
            project_qkv(be, l, cur, q, k, v);
            attention_over_cache(be, hp, batch, q, k, v, kv.k[size_t(il)], kv.v[size_t(il)], ap,
                                 attn);
            be.matmul(l.wo, attn, proj);
            add_bias(be, proj, l.bo);
            be.add(x, proj, x);

            // feed-forward block
            layer_norm_affine(be, x, l.ffn_norm, l.ffn_norm_b, hp.norm_eps, cur);
            ffn_gelu(be, l, cur, up, proj);
            be.add(x, proj, x);
        }

        output_head(be, hp, w, batch, x, ws, FinalNorm::Layer);
    }
};

}  // namespace

const Architecture& starcoder2_architecture() {
    static const StarCoder2Architecture arch;
    return arch;
}

}  // namespace lcx
