// Perplexity exactly as llama.cpp's llama-perplexity computes it: the text is tokenized
// once (with BOS) and cut into consecutive chunks of n_ctx tokens; each chunk starts with
// BOS in place of its first token and is evaluated on a fresh KV cache; only the second
// half of each chunk is scored. PPL = exp(mean negative log-likelihood), and the
// uncertainty is llama.cpp's: ppl · sqrt(var(nll) / (count - 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "runtime/context.h"

namespace lcx {

struct PerplexityResult {
    int64_t n_chunks = 0;
    int64_t n_scored = 0;  // tokens scored
    double ppl = 0.0;
    double ppl_error = 0.0;
};

// `tokens` must hold at least 2·n_ctx tokens; the context must have room for n_ctx.
// `progress(chunk_done, n_chunks, ppl_so_far)` is called after each chunk.
PerplexityResult compute_perplexity(
    Context& ctx, std::span<const int32_t> tokens, int64_t n_ctx, int32_t bos,
    const std::function<void(int64_t, int64_t, double)>& progress = {});

// -log softmax(logits)[target], computed stably in double.
double negative_log_likelihood(std::span<const float> logits, int32_t target);

}  // namespace lcx
