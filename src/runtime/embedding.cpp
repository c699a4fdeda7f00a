#include "runtime/embedding.h"

#include <cmath>

#include "common/error.h"

namespace lcx {

void l2_normalize(std::span<float> v) {
    double sum = 0.0;
    for (float x : v) sum += double(x) * double(x);
    if (sum <= 0.0) return;
    const float inv = float(1.0 / std::sqrt(sum));
    for (float& x : v) x *= inv;
}

std::vector<float> mean_pooled_embedding(Context& ctx, std::span<const int32_t> tokens,
                                         int32_t seq) {
    check(!tokens.empty(), "an embedding needs at least one token");
    check(ctx.next_pos(seq) == 0, "the sequence for an embedding must be empty");
    Batch batch;
    batch.add_sequence(tokens, 0, seq, /*all_logits=*/true);
    try {
        ctx.decode(batch, DecodeOutput::Embeddings);
    } catch (...) {
        ctx.truncate(seq, 0);
        throw;
    }
    const size_t n_embd = size_t(ctx.n_embd());
    std::vector<double> sum(n_embd, 0.0);
    for (size_t i = 0; i < tokens.size(); ++i) {
        const std::span<const float> h = ctx.embedding(int32_t(i));
        for (size_t j = 0; j < n_embd; ++j) sum[j] += h[j];
    }
    ctx.truncate(seq, 0);
    std::vector<float> out(n_embd);
    for (size_t j = 0; j < n_embd; ++j) out[j] = float(sum[j] / double(tokens.size()));
    l2_normalize(out);
    return out;
}

}  // namespace lcx
