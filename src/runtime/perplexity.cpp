#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

namespace lcx {

double negative_log_likelihood(std::span<const float> logits, int32_t target) {
    float max_logit = logits[0];
    for (float l : logits) max_logit = std::max(max_logit, l);
    double sum = 0.0;
    for (float l : logits) sum += std::exp(double(l) - max_logit);
    return -(double(logits[size_t(target)]) - max_logit - std::log(sum));
}

PerplexityResult compute_perplexity(Context& ctx, std::span<const int32_t> tokens, int64_t n_ctx,
                                    int32_t bos,
                                    const std::function<void(int64_t, int64_t, double)>& progress) {
    check(n_ctx >= 4, "perplexity needs a context of at least 4 tokens");
    check(int64_t(tokens.size()) >= 2 * n_ctx,
          "the text has " + std::to_string(tokens.size()) + " tokens; perplexity with -c " +
              std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx));
    check(ctx.n_ctx() >= n_ctx, "the context is smaller than the perplexity window");
    PerplexityResult r;
    r.n_chunks = int64_t(tokens.size()) / n_ctx;
    // The first half of each chunk is context only: its predictions see too little.
    const int64_t first = n_ctx / 2;
    double nll = 0.0, nll2 = 0.0;
    std::vector<int32_t> chunk(size_t(n_ctx), 0);
    Batch batch;
    for (int64_t c = 0; c < r.n_chunks; ++c) {
        const auto start = tokens.begin() + c * n_ctx;
        std::copy(start, start + n_ctx, chunk.begin());
        if (bos >= 0) chunk[0] = bos;
        ctx.clear();
        batch.clear();
        for (int64_t i = 0; i < n_ctx; ++i)
            batch.add(chunk[size_t(i)], int32_t(i), 0, /*want_logits=*/i >= first && i < n_ctx - 1);
        ctx.decode(batch);
        for (int64_t i = first; i < n_ctx - 1; ++i) {
            // The logits at position i predict token i + 1 (the original token, not BOS).
            const double v = negative_log_likelihood(ctx.logits(int32_t(i)), start[i + 1]);
            nll += v;
            nll2 += v * v;
            ++r.n_scored;
        }
        if (progress) progress(c + 1, r.n_chunks, std::exp(nll / double(r.n_scored)));
    }
    const double mean = nll / double(r.n_scored);
    const double var = nll2 / double(r.n_scored) - mean * mean;
    r.ppl = std::exp(mean);
    r.ppl_error = var > 0 && r.n_scored > 1 ? std::sqrt(var / double(r.n_scored - 1)) * r.ppl : 0.0;
    return r;
}

}  // namespace lcx
