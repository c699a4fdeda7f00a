// Embeddings: the hidden rows a DecodeOutput::Embeddings pass keeps are the output-normed
// states that feed the output projection, and mean pooling averages them and scales the
// result to unit length.
#include "runtime/embedding.h"

#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"
#include "common/error.h"
#include "model/model.h"
#include "test_support.h"

namespace lcx {
namespace {

Backend& backend() {
    static std::unique_ptr<Backend> be = make_cpu_backend(2);
    return *be;
}

// "Once upon a time, there was a little girl named Lily." in stories260K's vocabulary.
const std::vector<int32_t> kTokens{1, 403, 407, 261, 378, 432, 383, 286, 261, 400, 428, 395};

float max_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    float d = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
}

double norm(std::span<const float> v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s);
}

class Embeddings : public testing::Test {
  protected:
    void SetUp() override {
        auto p = test::find_data("models/stories260K.gguf");
        if (!p) GTEST_SKIP() << "models/stories260K.gguf not found";
        model_ = Model::load(*p);
    }
    Context make(int64_t n_batch = 512) {
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_batch = n_batch;
        return Context(model_, backend(), cp);
    }
    // Hidden rows of every token of kTokens, from one Embeddings decode.
    std::vector<std::vector<float>> hidden_rows(Context& ctx) {
        Batch b;
        b.add_sequence(kTokens, 0, 0, /*all_logits=*/true);
        ctx.decode(b, DecodeOutput::Embeddings);
        std::vector<std::vector<float>> rows;
        for (size_t i = 0; i < kTokens.size(); ++i) {
            auto h = ctx.embedding(int32_t(i));
            rows.emplace_back(h.begin(), h.end());
        }
        return rows;
    }
    std::shared_ptr<const Model> model_;
};

TEST_F(Embeddings, HiddenRowsAreWhatTheOutputProjectionSees) {
    Context ectx = make(), lctx = make();
    const auto rows = hidden_rows(ectx);
    Batch b;
    b.add_sequence(kTokens, 0, 0, /*all_logits=*/true);
    lctx.decode(b);
    const HParams& hp = model_->hparams();
    ASSERT_EQ(int64_t(rows[0].size()), hp.n_embd);
    Tensor h = backend().alloc(DType::F32, {hp.n_embd, 1});
    Tensor y = backend().alloc(DType::F32, {hp.n_vocab, 1});
    for (size_t i = 0; i < rows.size(); ++i) {
        std::copy(rows[i].begin(), rows[i].end(), h.data_as<float>());
        backend().matmul(model_->weights().output, h, y);
        EXPECT_LT(max_diff({y.data_as<float>(), size_t(hp.n_vocab)}, lctx.logits(int32_t(i))), 1e-4)
            << i;
    }
    // An embeddings pass keeps no logits, and a logits pass no hidden rows.
    EXPECT_THROW(ectx.logits(0), Error);
    EXPECT_THROW(lctx.embedding(0), Error);
}

TEST_F(Embeddings, HiddenRowsAreRmsNormedTimesTheNormWeight) {
    const Tensor& w = model_->weights().output_norm;
    if (w.type() != DType::F32) GTEST_SKIP() << "output_norm is not F32";
    Context ctx = make();
    const auto rows = hidden_rows(ctx);
    const float* g = w.data_as<float>();
    for (int64_t j = 0; j < w.n_elements(); ++j)
        if (!(std::fabs(g[j]) > 1e-6f)) GTEST_SKIP() << "output_norm has a zero weight";
    for (size_t i = 0; i < rows.size(); ++i) {
        double ms = 0;
        for (size_t j = 0; j < rows[i].size(); ++j) {
            const double x = rows[i][j] / g[j];
            ms += x * x;
        }
        // Every component was divided by the row's RMS; without the weight the squares
        // average to one (the eps makes it slightly less).
        EXPECT_NEAR(ms / double(rows[i].size()), 1.0, 1e-3) << i;
    }
}

TEST_F(Embeddings, MeanPoolingOfTheHiddenRows) {
    Context ctx = make();
    const auto rows = hidden_rows(ctx);
    ctx.clear();
    const std::vector<float> e = mean_pooled_embedding(ctx, kTokens);
    EXPECT_NEAR(norm(e), 1.0, 1e-5);
    std::vector<float> mean(rows[0].size(), 0.0f);
    for (const auto& r : rows)
        for (size_t j = 0; j < r.size(); ++j) mean[j] += r[j] / float(rows.size());
    l2_normalize(mean);
    EXPECT_LT(max_diff(e, mean), 1e-5);
    EXPECT_EQ(ctx.next_pos(0), 0);  // the sequence was emptied
    EXPECT_EQ(ctx.kv_cache().n_used(), 0);

    // One token: its own hidden row at unit length.
    const std::vector<int32_t> bos{kTokens[0]};
    std::vector<float> first = rows[0];
    l2_normalize(first);
    EXPECT_LT(max_diff(mean_pooled_embedding(ctx, bos), first), 1e-5);
}

TEST_F(Embeddings, DeterministicAndInputDependent) {
    Context ctx = make(), chunked = make(5);
    const auto a1 = mean_pooled_embedding(ctx, kTokens);
    const auto a2 = mean_pooled_embedding(ctx, kTokens);
    EXPECT_EQ(a1, a2);
    // Passes of 5, 5 and 2 tokens pool to the same vector.
    EXPECT_LT(max_diff(mean_pooled_embedding(chunked, kTokens), a1), 1e-4);
    const std::vector<int32_t> other(kTokens.begin(), kTokens.begin() + 6);
    const auto b = mean_pooled_embedding(ctx, other);
    EXPECT_GT(max_diff(a1, b), 1e-3);
    // Another sequence's cells do not leak into the pooled one.
    Batch busy;
    busy.add_sequence(other, 0, 3);
    ctx.decode(busy);
    EXPECT_LT(max_diff(mean_pooled_embedding(ctx, kTokens, 1), a1), 1e-4);
    EXPECT_EQ(ctx.next_pos(3), int32_t(other.size()));
}

TEST_F(Embeddings, ContextWithoutLogitsGivesTheSameEmbeddings) {
    Context full = make();
    ContextParams cp;
    cp.n_ctx = 64;
    cp.logits = false;
    Context lean(model_, backend(), cp);
    EXPECT_LT(max_diff(mean_pooled_embedding(lean, kTokens), mean_pooled_embedding(full, kTokens)),
              1e-6);
    Batch b;
    b.add_sequence(kTokens, 0, 0);
    EXPECT_THROW(lean.decode(b), Error);  // no logits buffer
    EXPECT_EQ(lean.kv_cache().n_used(), 0);
}

TEST_F(Embeddings, ErrorsLeaveTheContextUsable) {
    Context ctx = make();
    EXPECT_THROW(mean_pooled_embedding(ctx, std::vector<int32_t>{}), Error);
    EXPECT_THROW(mean_pooled_embedding(ctx, std::vector<int32_t>(65, 1)), Error);  // > n_ctx
    EXPECT_THROW(mean_pooled_embedding(ctx, std::vector<int32_t>{1, 1000000}), Error);
    EXPECT_EQ(ctx.kv_cache().n_used(), 0);
    EXPECT_NEAR(norm(mean_pooled_embedding(ctx, kTokens)), 1.0, 1e-5);
}

}  // namespace
}  // namespace lcx
