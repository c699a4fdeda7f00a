// Phi-3: the LLaMA layout (RMSNorm, SwiGLU) with NeoX-style rotary embeddings, the Q/K/V
// projections usually fused into one attn_qkv matrix (q, k, v rows stacked) and the
// gate and up projections fused into one ffn_up matrix (gate rows first). Fused matrices
// are split into row views at load time, so the forward pass is the plain one. Every
// layer attends within attention.sliding_window, as llama.cpp does for this family.
#include <cmath>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "model/architecture.h"
#include "model/blocks.h"
#include "model/weight_binder.h"

namespace lcx {

namespace {

class Phi3Architecture final : public Architecture {
  public:
    std::string_view name() const override { return "phi3"; }

    void complete_hparams(const gguf::GgufFile& f, HParams& hp) const override {
        hp.rope_mode = RopeMode::NeoX;
        // LongRoPE (the 128k-context Phi-3 variants) rescales each rotary frequency by a
        // per-dimension factor and the attention by a context-dependent factor.
        for (const char* t : {"rope_factors_long.weight", "rope_factors_short.weight"})
            check(f.find_tensor(t) == nullptr,
                  f.path() + ": tensor '" + t +
                      "': LongRoPE frequency factors (long-context Phi-3) are not supported");
    }

    ModelWeights bind_weights(WeightBinder& b, const HParams& hp) const override {
        ModelWeights w = bind_embeddings_and_output(b, hp, /*norm_bias=*/false);
        const int64_t nq = hp.n_embd_q(), nk = hp.n_embd_k(), nv = hp.n_embd_v();
        for (int64_t i = 0; i < hp.n_layer; ++i) {
            auto name = [&](const char* s) { return WeightBinder::layer_name(i, s); };
            LayerWeights& l = w.layers[size_t(i)];
            l.attn_norm = b.require(name("attn_norm.weight"), {hp.n_embd});
            if (b.has(name("attn_qkv.weight"))) {
                l.wqkv = b.require(name("attn_qkv.weight"), {hp.n_embd, nq + nk + nv});
                l.wq = l.wqkv.rows(0, nq);
                l.wk = l.wqkv.rows(nq, nk);
                l.wv = l.wqkv.rows(nq + nk, nv);
            } else {
                l.wq = b.require(name("attn_q.weight"), {hp.n_embd, nq});
                l.wk = b.require(name("attn_k.weight"), {hp.n_embd, nk});
                l.wv = b.require(name("attn_v.weight"), {hp.n_embd, nv});
            }
            l.wo = b.require(name("attn_output.weight"), {nq, hp.n_embd});
            l.ffn_norm = b.require(name("ffn_norm.weight"), {hp.n_embd});
            const Tensor gate_up = b.require(name("ffn_up.weight"), {hp.n_embd, 2 * hp.n_ff});
            l.ffn_gate = gate_up.rows(0, hp.n_ff);
            l.ffn_up = gate_up.rows(hp.n_ff, hp.n_ff);
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
        ap.sliding_window = hp.sliding_window;

        be.get_rows(w.tok_embd, batch.tokens, x);
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
            ffn_glu(be, l, Glu::Silu, cur, gate, up, proj);
            be.add(x, proj, x);
        }

        output_head(be, hp, w, batch, x, ws);
    }
};

}  // namespace

const Architecture& phi3_architecture() {
    static const Phi3Architecture arch;
    return arch;
}

}  // namespace lcx
