// Building blocks shared by the architectures' forward passes. Each is a plain function
// over the Backend working on the first n_tokens rows of workspace tensors.
#pragma once

#include "backend/backend.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace lcx {

class WeightBinder;

// Leading `n` rows of a [width, n_batch] scratch tensor.
Tensor first_rows(const Tensor& t, int64_t n);

// One block's activations over n tokens, laid over the workspace. Buffers whose lives do
// not overlap share bytes: the attention output takes the normed input's (which only the
// Q/K/V projections read, before attention), and the block output the queries' (dead once
// attention ran). Every architecture's block follows that order: norm into cur, project
// to q/k/v, attention into attn, output projection into proj; norm into cur, FFN into
// proj.
struct BlockActivations {
    Tensor cur, q, k, v, attn, proj, gate, up;
};
BlockActivations block_activations(const HParams& hp, const Workspace& ws, int64_t n);

// out = rms_norm(x) * weight
void rms_norm_mul(Backend& be, const Tensor& x, const Tensor& weight, float eps, Tensor& out);

// out = layer_norm(x) * weight + bias (bias may be empty)
void layer_norm_affine(Backend& be, const Tensor& x, const Tensor& weight, const Tensor& bias,
                       float eps, Tensor& out);

// t += bias, row-broadcast; nothing when the bias is empty (the tensor is absent).
void add_bias(Backend& be, Tensor& t, const Tensor& bias);

// q, k, v = wq·x + bq, wk·x + bk, wv·x + bv (the biases only where the layer has them).
void project_qkv(Backend& be, const LayerWeights& l, const Tensor& x, Tensor& q, Tensor& k,
                 Tensor& v);

// Self-attention of the batch over the KV cache, from projected q, k, v
// ([n_embd_q|k|v, n_tokens], modified in place by RoPE): rotates q and k, appends k and v
// to the layer's cache cells, and attends each sequence group to its own cells.
// `out` is [n_embd_q, n_tokens]. q_scale != 1 multiplies the rotated queries before the
// product with K (Gemma and Phi-3 scale Q rather than Q·K in llama.cpp; with an f16 cache
// the query is rounded to f16 after this scaling, so doing it the same way keeps the
// results close); base.scale then usually stays 1.
void attention_over_cache(Backend& be, const HParams& hp, const ForwardBatch& batch, Tensor& q,
                          Tensor& k, Tensor& v, Tensor& k_cache, Tensor& v_cache,
                          const AttentionParams& base, Tensor& out, float q_scale = 1.0f);

// out = down · (act(gate · x) ⊙ (up · x)): SwiGLU (act = SiLU) or Gemma's GeGLU (GELU). The
// hidden layer is left in gate; up is scratch (Backend::matmul_glu).
void ffn_glu(Backend& be, const LayerWeights& l, Glu act, const Tensor& x, Tensor& gate, Tensor& up,
             Tensor& out);

// out = down · gelu(up · x + up_b) + down_b  (plain MLP; biases where present)
void ffn_gelu(Backend& be, const LayerWeights& l, const Tensor& x, Tensor& up, Tensor& out);

// token_embd, output_norm (+ its bias when `norm_bias`) and output, which falls back to the
// token embedding when the file ties them (no output.weight).
ModelWeights bind_embeddings_and_output(WeightBinder& b, const HParams& hp, bool norm_bias);

// Copies the hidden rows of batch.outputs into ws.out_rows; returns how many.
int64_t gather_output_rows(const ForwardBatch& batch, const Tensor& hidden, Workspace& ws);

enum class FinalNorm { Rms, Layer };

// The head every decoder ends with: gathers the rows whose outputs are wanted, applies the
// final norm in place (ws.out_rows then holds what embeddings pool) and, when the batch
// wants logits, the output projection. Only wanted rows reach the (large) projection.
// Returns the logits view, or an empty tensor when none were computed.
Tensor output_head(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                   const Tensor& hidden, Workspace& ws, FinalNorm norm = FinalNorm::Rms);

// RoPE settings from the hyper-parameters.
RopeParams rope_params(const HParams& hp);

}  // namespace lcx
