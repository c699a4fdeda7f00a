// Gemma 2: Gemma (sqrt(n_embd)-scaled embeddings, gated GELU, tied output, NeoX RoPE)
// plus extra RMSNorms on the attention and feed-forward outputs before they join the
// residual stream, soft-capping of the attention logits and of the final logits, and
// layers that alternate between a sliding-window and a global attention: even layers
// (0, 2, ...) see only the last attention.sliding_window positions, as in llama.cpp.
#include <cmath>

#include "gguf/gguf_file.h"
#include "model/architecture.h"
#include "model/blocks.h"
#include "model/weight_binder.h"

namespace lcx {

namespace {

class Gemma2Architecture final : public Architecture {
  public:
    std::string_view name() const override { return "gemma2"; }

    void complete_hparams(const gguf::GgufFile& f, HParams& hp) const override {
        hp.rope_mode = RopeMode::NeoX;
        // Gemma 2's published values, which llama.cpp also assumes for files that omit
        // the keys.
        if (!f.has(hp.arch + ".attn_logit_softcapping")) hp.attn_softcap = 50.0f;
        if (!f.has(hp.arch + ".final_logit_softcapping")) hp.final_softcap = 30.0f;
        if (hp.sliding_window <= 0) hp.sliding_window = 4096;
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
            l.attn_post_norm = b.require(name("post_attention_norm.weight"), {hp.n_embd});
            l.ffn_norm = b.require(name("ffn_norm.weight"), {hp.n_embd});
            l.ffn_gate = b.require(name("ffn_gate.weight"), {hp.n_embd, hp.n_ff});
            l.ffn_up = b.require(name("ffn_up.weight"), {hp.n_embd, hp.n_ff});
            l.ffn_down = b.require(name("ffn_down.weight"), {hp.n_ff, hp.n_embd});
            l.ffn_post_norm = b.require(name("post_ffw_norm.weight"), {hp.n_embd});
        }
        return w;
    }

    void forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                 KvTensors& kv, Workspace& ws) const override {
        const int64_t n = int64_t(batch.tokens.size());
        Tensor x = first_rows(ws.x, n);
        auto [cur, q, k, v, attn, proj, gate, up] = block_activations(hp, ws, n);

        // The query scale is 1/sqrt(query_pre_attn_scalar), which GGUF does not record:
        // llama.cpp takes n_embd / n_head for the 27B model (46 layers) and the head
        // dimension otherwise, which is what the published configs say.
        const float q_scale = hp.n_layer == 46 ? 1.0f / std::sqrt(float(hp.n_embd / hp.n_head))
                                               : 1.0f / std::sqrt(float(hp.head_dim));

        be.get_rows(w.tok_embd, batch.tokens, x);
        be.scale(x, std::sqrt(float(hp.n_embd)), x);
        for (int64_t il = 0; il < hp.n_layer; ++il) {
            const LayerWeights& l = w.layers[size_t(il)];
            AttentionParams ap;
            ap.scale = 1.0f;
            ap.softcap = hp.attn_softcap;
            ap.sliding_window = il % 2 == 0 ? hp.sliding_window : 0;

            // attention block, its output normed before the residual add
            rms_norm_mul(be, x, l.attn_norm, hp.norm_eps, cur);
            project_qkv(be, l, cur, q, k, v);
            attention_over_cache(be, hp, batch, q, k, v, kv.k[size_t(il)], kv.v[size_t(il)], ap,
                                 attn, q_scale);
            be.matmul(l.wo, attn, proj);
            rms_norm_mul(be, proj, l.attn_post_norm, hp.norm_eps, proj);
            be.add(x, proj, x);

            // feed-forward block, likewise
            rms_norm_mul(be, x, l.ffn_norm, hp.norm_eps, cur);
            ffn_glu(be, l, Glu::Gelu, cur, gate, up, proj);
            rms_norm_mul(be, proj, l.ffn_post_norm, hp.norm_eps, proj);
            be.add(x, proj, x);
        }

        Tensor logits = output_head(be, hp, w, batch, x, ws);
        if (!logits.empty() && hp.final_softcap > 0) be.softcap(logits, hp.final_softcap, logits);
    }
};

}  // namespace

const Architecture& gemma2_architecture() {
    static const Gemma2Architecture arch;
    return arch;
}

}  // namespace lcx
