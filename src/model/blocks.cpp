#include "model/blocks.h"

#include <cassert>
#include <cmath>
#include <cstring>

#include "model/weight_binder.h"

namespace lcx {

Tensor first_rows(const Tensor& t, int64_t n) { return t.rows(0, n); }

namespace {
// The first n rows of `width` floats in the bytes of a scratch buffer of any row width
// (Tensor::view checks they fit).
Tensor rows_in(const Tensor& buf, int64_t width, int64_t n) {
    return buf.view({width, n}, {size_t(width) * sizeof(float)}, 0);
}
}  // namespace

BlockActivations block_activations(const HParams& hp, const Workspace& ws, int64_t n) {
    BlockActivations a;
    a.cur = rows_in(ws.cur, hp.n_embd, n);
    a.q = rows_in(ws.q, hp.n_embd_q(), n);
    a.k = first_rows(ws.k, n);
    a.v = first_rows(ws.v, n);
    a.attn = rows_in(ws.cur, hp.n_embd_q(), n);
    a.proj = rows_in(ws.q, hp.n_embd, n);
    a.gate = first_rows(ws.gate, n);
    a.up = first_rows(ws.up, n);
    return a;
}

void rms_norm_mul(Backend& be, const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
    be.rms_norm(x, eps, out);
    be.mul(out, weight, out);
}

void layer_norm_affine(Backend& be, const Tensor& x, const Tensor& weight, const Tensor& bias,
                       float eps, Tensor& out) {
    be.layer_norm(x, eps, &weight, bias.empty() ? nullptr : &bias, out);
}

void add_bias(Backend& be, Tensor& t, const Tensor& bias) {
    if (!bias.empty()) be.add(t, bias, t);
}

void project_qkv(Backend& be, const LayerWeights& l, const Tensor& x, Tensor& q, Tensor& k,
                 Tensor& v) {
    const MatmulTask qkv[] = {{&l.wq, &q}, {&l.wk, &k}, {&l.wv, &v}};
    be.matmul_many(x, qkv);
    add_bias(be, q, l.bq);
    add_bias(be, k, l.bk);
    add_bias(be, v, l.bv);
}

RopeParams rope_params(const HParams& hp) {
    RopeParams p;
    p.n_rot = hp.n_rot;
    p.mode = hp.rope_mode;
    p.freq_base = hp.rope_freq_base;
    p.freq_scale = hp.rope_freq_scale;
    return p;
}

namespace {

// Cells [first, first + n) of a head-major [head_dim, n_ctx, n_head_kv] cache, as the
// attention op takes a cache: [head_dim, n_head_kv, n] with the heads n_ctx rows apart.
Tensor cache_cells(const Tensor& cache, int64_t first, int64_t n) {
    return cache.view({cache.ne(0), cache.ne(2), n}, {cache.nb(2), cache.nb(1)},
                      size_t(first) * cache.nb(1));
}

// Stores the K (or V) rows of n tokens, [head_dim, n_head_kv, n] contiguous, into cells
// [first, first + n) of a head-major cache: one strided copy per head.
void store_cells(Backend& be, const Tensor& rows, Tensor& cache, int64_t first, int64_t n) {
    const int64_t heads = cache.ne(2);
    const Tensor src = rows.reshape({cache.ne(0), heads, n});
    for (int64_t h = 0; h < heads; ++h) {
        const Tensor from = src.view({cache.ne(0), n}, {src.nb(2)}, size_t(h) * src.nb(1));
        Tensor to = cache.view({cache.ne(0), n}, {cache.nb(1)},
                               size_t(h) * cache.nb(2) + size_t(first) * cache.nb(1));
        be.store_rows(from, to, 0);
    }
}

}  // namespace

void attention_over_cache(Backend& be, const HParams& hp, const ForwardBatch& batch, Tensor& q,
                          Tensor& k, Tensor& v, Tensor& k_cache, Tensor& v_cache,
                          const AttentionParams& base, Tensor& out, float q_scale) {
    const int64_t n = int64_t(batch.tokens.size());
    Tensor q3 = q.reshape({hp.head_dim, hp.n_head, n});
    Tensor k3 = k.reshape({hp.head_dim, hp.n_head_kv, n});
    const RopeParams rp = rope_params(hp);
    be.rope(q3, batch.positions, rp, q3);
    be.rope(k3, batch.positions, rp, k3);
    if (q_scale != 1.0f) be.scale(q, q_scale, q);

    for (const AttentionGroup& g : batch.groups) {
        // This group's new keys/values go to its cells before it attends, so each token
        // also sees itself and the earlier tokens of the same batch.
        store_cells(be, k.rows(g.first_token, g.n_tokens), k_cache, g.first_cell, g.n_tokens);
        store_cells(be, v.rows(g.first_token, g.n_tokens), v_cache, g.first_cell, g.n_tokens);
    }
    for (const AttentionGroup& g : batch.groups) {
        Tensor qg = q.rows(g.first_token, g.n_tokens).reshape({hp.head_dim, hp.n_head, g.n_tokens});
        Tensor og = out.rows(g.first_token, g.n_tokens);
        const int64_t n_cells = int64_t(g.kv_positions.size());
        AttentionParams ap = base;
        ap.n_kv = n_cells;
        be.attention(qg, cache_cells(k_cache, g.kv_begin, n_cells),
                     cache_cells(v_cache, g.kv_begin, n_cells),
                     batch.positions.subspan(size_t(g.first_token), size_t(g.n_tokens)), ap, og,
                     g.kv_positions);
    }
}

void ffn_glu(Backend& be, const LayerWeights& l, Glu act, const Tensor& x, Tensor& gate, Tensor& up,
             Tensor& out) {
    be.matmul_glu(x, l.ffn_gate, l.ffn_up, act, gate, up);
    be.matmul(l.ffn_down, gate, out);
}

void ffn_gelu(Backend& be, const LayerWeights& l, const Tensor& x, Tensor& up, Tensor& out) {
    be.matmul(l.ffn_up, x, up);
    add_bias(be, up, l.ffn_up_b);
    be.gelu(up, up);
    be.matmul(l.ffn_down, up, out);
    add_bias(be, out, l.ffn_down_b);
}

ModelWeights bind_embeddings_and_output(WeightBinder& b, const HParams& hp, bool norm_bias) {
    ModelWeights w;
    w.tok_embd = b.require("token_embd.weight", {hp.n_embd, hp.n_vocab});
    w.output_norm = b.require("output_norm.weight", {hp.n_embd});
    if (norm_bias) w.output_norm_b = b.require("output_norm.bias", {hp.n_embd});
    w.output = b.optional("output.weight", {hp.n_embd, hp.n_vocab});
    if (w.output.empty()) {
        // Tied embeddings: the output projection reuses the token embedding.
        w.output = w.tok_embd;
        w.tied_output = true;
    }
    w.layers.resize(size_t(hp.n_layer));
    return w;
}

int64_t gather_output_rows(const ForwardBatch& batch, const Tensor& hidden, Workspace& ws) {
    const int64_t n_out = int64_t(batch.outputs.size());
    const size_t row = hidden.row_size();
    for (int64_t i = 0; i < n_out; ++i)
        std::memcpy(ws.out_rows.row(i), hidden.row(batch.outputs[size_t(i)]), row);
    return n_out;
}

Tensor output_head(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                   const Tensor& hidden, Workspace& ws, FinalNorm norm) {
    const int64_t n_out = gather_output_rows(batch, hidden, ws);
    if (n_out == 0) return {};
    Tensor h = first_rows(ws.out_rows, n_out);
    if (norm == FinalNorm::Layer)
        layer_norm_affine(be, h, w.output_norm, w.output_norm_b, hp.norm_eps, h);
    else
        rms_norm_mul(be, h, w.output_norm, hp.norm_eps, h);
    if (!batch.want_logits) return {};
    Tensor logits = first_rows(ws.logits, n_out);
    be.matmul(w.output, h, logits);
    return logits;
}

}  // namespace lcx
