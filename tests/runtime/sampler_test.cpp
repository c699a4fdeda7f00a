// Each sampler step on hand-made logits, against values worked out by hand.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace lcx {
namespace {

std::vector<int32_t> ids(const Candidates& c) {
    std::vector<int32_t> out;
    for (const auto& t : c.data) out.push_back(t.id);
    return out;
}

TEST(Sampler, SoftmaxSortsAndNormalizes) {
    std::vector<float> logits{1.0f, 2.0f, 3.0f};
    auto c = Candidates::from_logits(logits);
    softmax(c);
    // e^0, e^-1, e^-2 over their sum 1.503214
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 1, 0}));
    EXPECT_NEAR(c.data[0].p, 0.665241f, 1e-5);
    EXPECT_NEAR(c.data[1].p, 0.244728f, 1e-5);
    EXPECT_NEAR(c.data[2].p, 0.090031f, 1e-5);
}

TEST(Sampler, TopK) {
    std::vector<float> logits{0.1f, 0.5f, 0.3f, 0.9f};
    auto c = Candidates::from_logits(logits);
    apply_top_k(c, 2);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{3, 1}));
    auto all = Candidates::from_logits(logits);
    apply_top_k(all, 0);  // off
    EXPECT_EQ(all.data.size(), 4u);
    auto big = Candidates::from_logits(logits);
    apply_top_k(big, 40);  // more than there are
    EXPECT_EQ(ids(big), (std::vector<int32_t>{3, 1, 2, 0}));
}

TEST(Sampler, TopP) {
    std::vector<float> logits{1.0f, 2.0f, 3.0f};  // p = .665, .245, .090
    auto c = Candidates::from_logits(logits);
    apply_top_p(c, 0.9f);  // .665 < .9 <= .910
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 1}));
    c = Candidates::from_logits(logits);
    apply_top_p(c, 0.5f);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2}));
    c = Candidates::from_logits(logits);
    apply_top_p(c, 0.95f);
    EXPECT_EQ(c.data.size(), 3u);
    c = Candidates::from_logits(logits);
    apply_top_p(c, 0.5f, /*min_keep=*/2);
    EXPECT_EQ(c.data.size(), 2u);
}

TEST(Sampler, MinP) {
    std::vector<float> logits{1.0f, 2.0f, 3.0f};
    auto c = Candidates::from_logits(logits);
    apply_min_p(c, 0.2f);  // cut at 3 + ln 0.2 = 1.391
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 1}));
    c = Candidates::from_logits(logits);
    apply_min_p(c, 0.5f);  // cut at 3 + ln 0.5 = 2.307
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2}));
    c = Candidates::from_logits(logits);
    apply_min_p(c, 0.0f);  // off
    EXPECT_EQ(c.data.size(), 3u);
}

TEST(Sampler, TypicalP) {
    // Probabilities .5 .3 .2: entropy 1.02965; |surprise - entropy| = .3365 .1743 .5798,
    // so the order is id 1, id 0, id 2.
    std::vector<float> logits{std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    auto c = Candidates::from_logits(logits);
    apply_typical_p(c, 0.5f);  // .3, then .8 > .5
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 0}));
    c = Candidates::from_logits(logits);
    apply_typical_p(c, 0.2f);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
    c = Candidates::from_logits(logits);
    apply_typical_p(c, 1.0f);  // off
    EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2}));
}

TEST(Sampler, Penalties) {
    std::vector<float> logits{2.0f, -1.0f, 0.5f};
    auto c = Candidates::from_logits(logits);
    std::vector<int32_t> recent{0, 0, 1};
    apply_penalties(c, recent, 2.0f, 0.1f, 0.5f);
    // id 0: 2/2 - (2*.1 + .5) = 0.3; id 1: -1*2 - (.1 + .5) = -2.6; id 2 unseen.
    EXPECT_NEAR(c.data[0].logit, 0.3f, 1e-6);
    EXPECT_NEAR(c.data[1].logit, -2.6f, 1e-6);
    EXPECT_FLOAT_EQ(c.data[2].logit, 0.5f);
}

TEST(Sampler, Temperature) {
    std::vector<float> logits{1.0f, 2.0f, -1.0f};
    auto c = Candidates::from_logits(logits);
    apply_temperature(c, 0.5f);
    EXPECT_FLOAT_EQ(c.data[0].logit, 2.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, 4.0f);
    EXPECT_FLOAT_EQ(c.data[2].logit, -2.0f);
    c = Candidates::from_logits(logits);
    apply_temperature(c, 0.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, 2.0f);
    EXPECT_TRUE(std::isinf(c.data[0].logit) && c.data[0].logit < 0);
    EXPECT_TRUE(std::isinf(c.data[2].logit) && c.data[2].logit < 0);
}

TEST(Sampler, DistFollowsProbabilities) {
    std::vector<float> logits{std::log(0.7f), std::log(0.3f)};
    std::mt19937 rng(42);
    int first = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        auto c = Candidates::from_logits(logits);
        if (sample_dist(c, rng) == 0) ++first;
    }
    // Binomial sd is sqrt(n*.7*.3) = 65; allow 6 sd.
    EXPECT_NEAR(first, 0.7 * n, 400);
}

TEST(Sampler, GreedyChainUsesPenalties) {
    std::vector<float> logits{2.0f, 1.5f, 0.0f};
    SamplerParams p;
    p.temperature = 0.0f;
    Sampler greedy(p);
    EXPECT_EQ(greedy.sample(logits), 0);
    p.repeat_penalty = 2.0f;
    Sampler penalized(p);
    penalized.accept(0);  // 2.0 -> 1.0, now below 1.5
    EXPECT_EQ(penalized.sample(logits), 1);
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
    std::vector<float> logits{2.0f, 1.5f};
    SamplerParams p;
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 2;
    Sampler s(p);
    s.accept(0);
    s.accept(1);
    s.accept(1);  // token 0 falls out of the last-2 window
    EXPECT_EQ(s.sample(logits), 0);
}

TEST(Sampler, SeededChainIsReproducibleAndStaysInTopK) {
    std::vector<float> logits(100);
    for (int i = 0; i < 100; ++i) logits[size_t(i)] = float(i % 17) * 0.3f;
    SamplerParams p;
    p.seed = 1234;
    p.top_k = 5;
    p.min_p = 0.0f;
    p.top_p = 1.0f;
    p.temperature = 5.0f;
    Sampler a(p), b(p);
    for (int i = 0; i < 50; ++i) {
        int32_t ta = a.sample(logits);
        EXPECT_EQ(ta, b.sample(logits));
        // the five largest logits (16*.3) belong to ids 16, 33, 50, 67, 84
        EXPECT_EQ(ta % 17, 16);
    }
}

}  // namespace
}  // namespace lcx
