#include "runtime/prompt_logits.h"

#include <algorithm>

#include "common/error.h"

namespace lcx {

std::vector<std::pair<int32_t, float>> top_logits(std::span<const float> logits, int k) {
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
    const size_t n = std::min(size_t(std::max(k, 0)), ids.size());
    std::partial_sort(ids.begin(), ids.begin() + ptrdiff_t(n), ids.end(),
                      [&](int32_t a, int32_t b) {
                          return logits[size_t(a)] > logits[size_t(b)] ||
                                 (logits[size_t(a)] == logits[size_t(b)] && a < b);
                      });
    std::vector<std::pair<int32_t, float>> out;
    for (size_t i = 0; i < n; ++i) out.emplace_back(ids[i], logits[size_t(ids[i])]);
    return out;
}

PromptLogits compute_prompt_logits(Context& ctx, std::span<const int32_t> tokens, int top_k,
                                   int n_greedy) {
    check(!tokens.empty(), "the prompt has no tokens");
    PromptLogits r;
    ctx.clear();
    Batch batch;
    batch.add_sequence(tokens, 0, 0, /*all_logits=*/true);
    ctx.decode(batch);
    for (size_t i = 0; i < tokens.size(); ++i)
        r.top.push_back(top_logits(ctx.logits(int32_t(i)), top_k));

    int32_t pos = int32_t(tokens.size());
    for (int step = 0; step < n_greedy; ++step) {
        const auto best2 = top_logits(ctx.logits(-1), 2);
        r.greedy.push_back(best2[0].first);
        r.greedy_margins.push_back(best2.size() > 1 ? best2[0].second - best2[1].second : 0.0f);
        if (step + 1 == n_greedy || ctx.kv_cache().n_free() == 0) break;
        batch.clear();
        batch.add(best2[0].first, pos++, 0, true);
        ctx.decode(batch);
    }
    return r;
}

}  // namespace lcx
