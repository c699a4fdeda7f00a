// The LLaMA layout, shared by the architectures that are LLaMA with small changes
// (Qwen2: Q/K/V biases and NeoX rotary embeddings).
#pragma once

#include "backend/backend.h"
#include "model/forward_batch.h"
#include "model/hparams.h"
#include "model/weight_binder.h"
#include "model/weights.h"

namespace lcx {

enum class QkvBias { Optional, Required };

// token_embd, output_norm, output (tied when absent) and every layer's tensors.
ModelWeights bind_llama_weights(WeightBinder& b, const HParams& hp, QkvBias qkv_bias);

// embed -> per layer: rms_norm, Q/K/V (+ biases), rope, attention over the cache, output
// projection, residual, rms_norm, SwiGLU FFN, residual -> final norm -> logits.
void llama_forward(Backend& be, const HParams& hp, const ModelWeights& w, const ForwardBatch& batch,
                   KvTensors& kv, Workspace& ws);

}  // namespace lcx
