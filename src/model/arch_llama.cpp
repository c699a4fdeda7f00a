// LLaMA (1, 2, 3 and the many models that share its layout): pre-norm decoder with
// RMSNorm, rotary embeddings on adjacent pairs, grouped-query attention and a SwiGLU
// feed-forward block.
#include <cmath>

#include "common/error.h"
#include "model/architecture.h"
#include "model/blocks.h"
#include "model/weight_binder.h"

namespace lcx {

namespace {

class LlamaArchitecture final : public Architecture {
  public:
    std::string_view name() const override { return "llama"; }

    void complete_hparams(const gguf::GgufFile&, HParams& hp) const override {
        hp.rope_mode = RopeMode::Normal;
    }

    ModelWeights bind_weights(WeightBinder& b, const HParams& hp) const override {
        ModelWeights w;
        w.tok_embd = b.require("token_embd.weight", {hp.n_embd, hp.n_vocab});
        w.output_norm = b.require("output_norm.weight", {hp.n_embd});
        w.output = b.optional("output.weight", {hp.n_embd, hp.n_vocab});
        if (w.output.empty()) {
            // Tied embeddings: the output projection reuses the token embedding.
            w.output = w.tok_embd;
            w.tied_output = true;
        }
        w.layers.resize(size_t(hp.n_layer));
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
        Tensor cur = first_rows(ws.cur, n);
        Tensor q = first_rows(ws.q, n), k = first_rows(ws.k, n), v = first_rows(ws.v, n);
        Tensor attn = first_rows(ws.attn, n);
        Tensor proj = first_rows(ws.proj, n);
        Tensor gate = first_rows(ws.gate, n), up = first_rows(ws.up, n);

        AttentionParams ap;
        ap.scale = 1.0f / std::sqrt(float(hp.head_dim));

        be.get_rows(w.tok_embd, batch.tokens, x);
        for (int64_t il = 0; il < hp.n_layer; ++il) {
            const LayerWeights& l = w.layers[size_t(il)];

            // attention block
            rms_norm_mul(be, x, l.attn_norm, hp.norm_eps, cur);
            const MatmulTask qkv[] = {{&l.wq, &q}, {&l.wk, &k}, {&l.wv, &v}};
            be.matmul_many(cur, qkv);
            attention_over_cache(be, hp, batch, q, k, v, kv.k[size_t(il)], kv.v[size_t(il)], ap,
                                 attn);
            be.matmul(l.wo, attn, proj);
            be.add(x, proj, x);

            // feed-forward block
            rms_norm_mul(be, x, l.ffn_norm, hp.norm_eps, cur);
            ffn_swiglu(be, l, cur, gate, up, proj);
            be.add(x, proj, x);
        }

        // Only the rows whose logits are wanted go through the (large) output projection.
        const int64_t n_out = gather_output_rows(batch, x, ws);
        if (n_out == 0) return;
        Tensor h = first_rows(ws.out_rows, n_out);
        rms_norm_mul(be, h, w.output_norm, hp.norm_eps, h);
        if (!batch.want_logits) return;
        Tensor logits = first_rows(ws.logits, n_out);
        be.matmul(w.output, h, logits);
    }
};

}  // namespace

const Architecture& llama_architecture() {
    static const LlamaArchitecture arch;
    return arch;
}

}  // namespace lcx
