// The generation loop's prompt passes: progress is reported per pass of n_batch tokens,
// and an interrupt between passes stops before the rest of the prompt is read.
#include "runtime/generator.h"

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "common/error.h"
#include "model/model.h"
#include "test_support.h"
#include "vocab/vocab.h"

namespace lcx {
namespace {

Backend& backend() {
    static std::unique_ptr<Backend> be = make_cpu_backend(2);
    return *be;
}

const std::vector<int32_t> kTokens{1, 403, 407, 261, 378, 432, 383, 286, 261, 400, 428, 395};

class GeneratorPrompt : public testing::Test {
  protected:
    void SetUp() override {
        auto p = test::find_data("models/stories260K.gguf");
        if (!p) GTEST_SKIP() << "models/stories260K.gguf not found";
        model_ = Model::load(*p);
        vocab_ = Vocab::from_gguf(model_->file());
    }
    Context make(int64_t n_batch) {
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_batch = n_batch;
        return Context(model_, backend(), cp);
    }
    std::shared_ptr<const Model> model_;
    Vocab vocab_;
};

TEST_F(GeneratorPrompt, ProgressPerPassAndSameTextAsOnePass) {
    Context small = make(5), big = make(512);
    SamplerParams sp;
    sp.temperature = 0;
    std::vector<std::pair<int64_t, int64_t>> calls;
    GenerateOptions opt;
    opt.n_predict = 8;
    opt.on_prompt_progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
    Sampler s1(sp), s2(sp);
    const GenerateResult a = generate(small, vocab_, s1, kTokens, opt, nullptr);
    EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{5, 12}, {10, 12}, {12, 12}}));
    calls.clear();
    const GenerateResult b = generate(big, vocab_, s2, kTokens, opt, nullptr);
    EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{12, 12}}));
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.reason, StopReason::Length);
}

TEST_F(GeneratorPrompt, InterruptBetweenPassesStopsReadingThePrompt) {
    Context ctx = make(5);
    Sampler sampler(SamplerParams{});
    std::atomic<bool> interrupt{false};
    GenerateOptions opt;
    opt.interrupt = &interrupt;
    opt.on_prompt_progress = [&](int64_t, int64_t) { interrupt.store(true); };
    const GenerateResult r = generate(ctx, vocab_, sampler, kTokens, opt, nullptr);
    EXPECT_EQ(r.reason, StopReason::Interrupted);
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_EQ(r.evaluated, std::vector<int32_t>(kTokens.begin(), kTokens.begin() + 5));
    EXPECT_EQ(ctx.next_pos(0), 5);  // the cache holds what was read
}

TEST_F(GeneratorPrompt, PromptLargerThanTheFreeCellsIsAnErrorBeforeAnyPass) {
    Context ctx = make(5);
    Sampler sampler(SamplerParams{});
    const std::vector<int32_t> long_prompt(65, 1);
    EXPECT_THROW(generate(ctx, vocab_, sampler, long_prompt, GenerateOptions{}, nullptr), Error);
    EXPECT_EQ(ctx.kv_cache().n_used(), 0);
}

}  // namespace
}  // namespace lcx
