// Building blocks shared by the architectures' forward passes. Each is a plain function
// over the Backend working on the first n_tokens rows of workspace tensors.
#pragma once

#include "backend/backend.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace lcx {

// Leading `n` rows of a [width, n_batch] scratch tensor.
Tensor first_rows(const Tensor& t, int64_t n);

// out = rms_norm(x) * weight
void rms_norm_mul(Backend& be, const Tensor& x, const Tensor& weight, float eps, Tensor& out);

// Self-attention of the batch over the KV cache, from projected q, k, v
// ([n_embd_q|k|v, n_tokens], modified in place by RoPE): rotates q and k, appends k and v
// to the layer's cache cells, and attends each sequence group to its own cells.
// `out` is [n_embd_q, n_tokens].
void attention_over_cache(Backend& be, const HParams& hp, const ForwardBatch& batch, Tensor& q,
                          Tensor& k, Tensor& v, Tensor& k_cache, Tensor& v_cache,
                          const AttentionParams& base, Tensor& out);

// out = down · (silu(gate · x) ⊙ (up · x))
void ffn_swiglu(Backend& be, const LayerWeights& l, const Tensor& x, Tensor& gate, Tensor& up,
                Tensor& out);

// Copies the hidden rows of batch.outputs into ws.out_rows; returns how many.
int64_t gather_output_rows(const ForwardBatch& batch, const Tensor& hidden, Workspace& ws);

// RoPE settings from the hyper-parameters.
RopeParams rope_params(const HParams& hp);

}  // namespace lcx
