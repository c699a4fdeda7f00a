// Sentence embeddings: a prompt's final-normed hidden states (the rows the output
// projection would turn into logits), mean-pooled over its tokens and scaled to unit
// length, as llama.cpp's mean pooling does.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/context.h"

namespace lcx {

// Decodes `tokens` (at least one) into sequence `seq` of `ctx` from position 0, which
// must be empty, and returns the L2-normalized mean of their hidden states (n_embd
// floats). The sequence is emptied again afterwards, also when decoding throws
// lcx::Error (e.g. the tokens do not fit the context).
std::vector<float> mean_pooled_embedding(Context& ctx, std::span<const int32_t> tokens,
                                         int32_t seq = 0);

// Scales `v` to unit Euclidean length (a zero vector stays zero).
void l2_normalize(std::span<float> v);

}  // namespace lcx
