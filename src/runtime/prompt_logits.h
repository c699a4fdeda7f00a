// The data of `llama-cxx logits`: the top-K logits at every prompt position and an
// optional greedy continuation with its margins — the shape of llama.cpp's golden files.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "runtime/context.h"

namespace lcx {

struct PromptLogits {
    std::vector<std::vector<std::pair<int32_t, float>>> top;  // per prompt position
    std::vector<int32_t> greedy;
    std::vector<float> greedy_margins;  // best minus second-best logit at each step
};

// The `k` highest logits, best first (ties by lower id).
std::vector<std::pair<int32_t, float>> top_logits(std::span<const float> logits, int k);

// Evaluates `tokens` in sequence 0 of a fresh context (logits at every position), then
// takes `n_greedy` argmax steps. Greedy stops early at `stop_token` (>= 0) if given.
PromptLogits compute_prompt_logits(Context& ctx, std::span<const int32_t> tokens, int top_k,
                                   int n_greedy);

}  // namespace lcx
