// KV cache bookkeeping, and decode paths that must agree with each other: one batch vs
// token by token vs small batches, two sequences in one batch vs each alone, rolling a
// sequence back.
#include "runtime/context.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "common/error.h"
#include "model/model.h"
#include "runtime/kv_cache.h"
#include "test_support.h"

namespace lcx {
namespace {

Backend& backend() {
    static std::unique_ptr<Backend> be = make_cpu_backend(2);
    return *be;
}

// "Once upon a time, there was a little girl named Lily." in stories260K's vocabulary
// (golden/stories260K.p1.json prompt and greedy tokens).
const std::vector<int32_t> kTokens{1, 403, 407, 261, 378, 432, 383, 286, 261, 400, 428, 395};

float max_diff(std::span<const float> a, std::span<const float> b) {
    float d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
}

KvCache small_cache(int64_t n_ctx) {
    HParams hp;
    hp.n_layer = 1;
    hp.head_dim = hp.head_dim_v = 8;
    hp.n_head_kv = 1;
    return KvCache(backend(), hp, n_ctx, DType::F16, DType::F16);
}

TEST(KvCache, SlotsPositionsAndRemoval) {
    KvCache kv = small_cache(6);
    EXPECT_EQ(kv.find_slot(0, 6), 0);
    for (int i = 0; i < 4; ++i) kv.assign(i, 0, i);
    kv.assign(4, 1, 0);
    EXPECT_EQ(kv.n_used(), 5);
    EXPECT_EQ(kv.max_pos(0), 3);
    EXPECT_EQ(kv.max_pos(1), 0);
    EXPECT_EQ(kv.max_pos(2), -1);
    EXPECT_EQ(kv.cells_of(0), (CellRange{0, 4}));
    EXPECT_EQ(kv.cells_of(1), (CellRange{4, 5}));
    EXPECT_TRUE(kv.cells_of(2).empty());
    std::vector<int32_t> pos;
    kv.positions_of(1, {2, 6}, pos);
    EXPECT_EQ(pos, (std::vector<int32_t>{-1, -1, 0, -1}));
    EXPECT_THROW(kv.find_slot(0, 2), Error);
    kv.remove(0, 2);  // positions 2, 3 of sequence 0
    EXPECT_EQ(kv.n_used(), 3);
    EXPECT_EQ(kv.max_pos(0), 1);
    EXPECT_EQ(kv.cells_of(0), (CellRange{0, 2}));
    EXPECT_EQ(kv.find_slot(0, 2), 2);
    EXPECT_THROW(kv.find_slot(0, 3), Error);  // 3 cells free, but not 3 in a row
    kv.remove(-1, 0);
    EXPECT_EQ(kv.n_used(), 0);
    EXPECT_TRUE(kv.cells_of(1).empty());
}

TEST(KvCache, ASequenceContinuesAfterItsLastCell) {
    KvCache kv = small_cache(8);
    kv.assign(0, 1, 0);
    kv.assign(1, 0, 0);
    kv.assign(2, 0, 1);
    kv.remove(1, 0);  // frees cell 0, before sequence 0's cells
    EXPECT_EQ(kv.find_slot(0, 2), 3);
    EXPECT_EQ(kv.find_slot(2, 1), 0);  // a new sequence takes the first free run
    kv.assign(3, 2, 0);
    EXPECT_EQ(kv.find_slot(0, 2), 4);  // its next cell is taken: the first run that fits
}

// Two sequences growing a token at a time in turn, as the server's slots do: with a
// partition each keeps one run of cells in its region, so attending one never scans
// the other's cells.
TEST(KvCache, PartitionKeepsEachSequenceInItsRegion) {
    KvCache kv = small_cache(10);
    kv.partition(2, 4);  // cells 8 and 9 belong to no sequence
    EXPECT_EQ(kv.region_of(1), (CellRange{4, 8}));
    for (int32_t pos = 0; pos < 3; ++pos)
        for (int32_t seq = 0; seq < 2; ++seq) kv.assign(kv.find_slot(seq, 1), seq, pos);
    EXPECT_EQ(kv.cells_of(0), (CellRange{0, 3}));
    EXPECT_EQ(kv.cells_of(1), (CellRange{4, 7}));
    EXPECT_THROW(kv.find_slot(0, 2), Error);  // its region has one cell left
    EXPECT_THROW(kv.find_slot(2, 1), Error);  // no region
    kv.remove(1, 1);
    EXPECT_EQ(kv.find_slot(1, 3), 5);
    EXPECT_THROW(kv.partition(3, 4), Error);  // 12 cells needed
    kv.partition(0, 0);
    EXPECT_EQ(kv.n_used(), 0);
    EXPECT_EQ(kv.find_slot(5, 10), 0);
}

TEST(KvCache, CacheTypeNames) {
    EXPECT_EQ(parse_cache_type("f16"), DType::F16);
    EXPECT_EQ(parse_cache_type("F32"), DType::F32);
    EXPECT_EQ(parse_cache_type("q8_0"), DType::Q8_0);
    EXPECT_THROW(parse_cache_type("q4_0"), Error);
}

class ContextPaths : public testing::Test {
  protected:
    void SetUp() override {
        auto p = test::find_data("models/stories260K.gguf");
        if (!p) GTEST_SKIP() << "models/stories260K.gguf not found";
        model_ = Model::load(*p);
    }
    Context make(int64_t n_batch) {
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_batch = n_batch;
        return Context(model_, backend(), cp);
    }
    std::shared_ptr<const Model> model_;
};

TEST_F(ContextPaths, BatchedAndTokenByTokenAgree) {
    Context one = make(512), step = make(512), chunked = make(5);
    Batch b;
    b.add_sequence(kTokens, 0, 0, /*all_logits=*/true);
    one.decode(b);
    chunked.decode(b);  // 12 tokens in passes of 5, 5 and 2
    for (size_t i = 0; i < kTokens.size(); ++i) {
        Batch s;
        s.add(kTokens[i], int32_t(i), 0, true);
        step.decode(s);
        EXPECT_LT(max_diff(one.logits(int32_t(i)), step.logits(0)), 2e-3) << i;
        EXPECT_LT(max_diff(one.logits(int32_t(i)), chunked.logits(int32_t(i))), 2e-3) << i;
    }
}

TEST_F(ContextPaths, TwoSequencesInOneBatchAreIndependent) {
    const std::vector<int32_t> a(kTokens.begin(), kTokens.begin() + 7);
    const std::vector<int32_t> b{1, 403, 407, 261, 378, 383, 286, 261, 400};
    Context both = make(512), alone_a = make(512), alone_b = make(512);
    Batch ab;
    ab.add_sequence(a, 0, 0);
    ab.add_sequence(b, 0, 1);
    both.decode(ab);
    Batch ba, bb;
    ba.add_sequence(a, 0, 0);
    bb.add_sequence(b, 0, 1);
    alone_a.decode(ba);
    alone_b.decode(bb);
    EXPECT_LT(max_diff(both.logits(int32_t(a.size()) - 1), alone_a.logits(-1)), 2e-3);
    EXPECT_LT(max_diff(both.logits(-1), alone_b.logits(-1)), 2e-3);
    EXPECT_EQ(both.next_pos(0), int32_t(a.size()));
    EXPECT_EQ(both.next_pos(1), int32_t(b.size()));
}

// The server's pattern: two prompts read in one batch, then every step one token of each
// sequence in one batch. In a partitioned cache each sequence's cells stay one run in its
// region, each attends only its own run, and the logits are bit-identical to each sequence
// decoded alone. Without the partition the cells interleave; results still match.
TEST_F(ContextPaths, SequencesDecodedTogetherMatchEachAlone) {
    const std::vector<std::vector<int32_t>> prompts{{1, 403, 407, 261, 378, 432, 383},
                                                    {1, 403, 407, 261, 378, 383, 286, 261, 400}};
    constexpr int kSteps = 6;
    // Greedy continuations of each prompt alone, with the logits of every step.
    std::vector<std::vector<std::vector<float>>> alone(2);
    std::vector<std::vector<int32_t>> next(2);
    for (size_t s = 0; s < 2; ++s) {
        Context ctx = make(512);
        Batch b;
        b.add_sequence(prompts[s], 0, int32_t(s));
        for (int step = 0;; ++step) {
            ctx.decode(b);
            const auto l = ctx.logits(-1);
            alone[s].emplace_back(l.begin(), l.end());
            if (step == kSteps) break;
            next[s].push_back(int32_t(std::max_element(l.begin(), l.end()) - l.begin()));
            b.clear();
            b.add(next[s].back(), int32_t(prompts[s].size()) + step, int32_t(s), true);
        }
    }
    for (bool partitioned : {true, false}) {
        SCOPED_TRACE(partitioned ? "partitioned" : "shared");
        ContextParams cp;
        cp.n_ctx = 128;
        Context ctx(model_, backend(), cp);
        if (partitioned) ctx.kv_cache().partition(2, 64);
        Batch b;
        for (size_t s = 0; s < 2; ++s) b.add_sequence(prompts[s], 0, int32_t(s));
        for (int step = 0;; ++step) {
            ctx.decode(b);
            // Sequence 0's entry: its prompt's last token, then the step's first.
            const int32_t row0 = step == 0 ? int32_t(prompts[0].size()) - 1 : 0;
            const std::span<const float> got[2] = {ctx.logits(row0), ctx.logits(-1)};
            for (size_t s = 0; s < 2; ++s) {
                const std::vector<float>& want = alone[s][size_t(step)];
                if (partitioned)
                    EXPECT_TRUE(std::equal(want.begin(), want.end(), got[s].begin()))
                        << "sequence " << s << " step " << step;
                else
                    EXPECT_LT(max_diff(want, got[s]), 2e-3) << "sequence " << s << " step " << step;
            }
            if (step == kSteps) break;
            b.clear();
            for (size_t s = 0; s < 2; ++s)
                b.add(next[s][size_t(step)], int32_t(prompts[s].size()) + step, int32_t(s), true);
        }
        if (partitioned) {
            const int64_t n0 = int64_t(prompts[0].size()) + kSteps;
            const int64_t n1 = int64_t(prompts[1].size()) + kSteps;
            EXPECT_EQ(ctx.kv_cache().cells_of(0), (CellRange{0, n0}));
            EXPECT_EQ(ctx.kv_cache().cells_of(1), (CellRange{64, 64 + n1}));
        }
    }
}

TEST_F(ContextPaths, TruncateRollsASequenceBack) {
    Context ctx = make(512), fresh = make(512);
    Batch b;
    b.add_sequence(kTokens, 0, 0);
    ctx.decode(b);
    ctx.truncate(0, 6);
    EXPECT_EQ(ctx.next_pos(0), 6);
    Batch rest;
    rest.add_sequence(std::vector<int32_t>(kTokens.begin() + 6, kTokens.end()), 6, 0);
    ctx.decode(rest);
    fresh.decode(b);
    EXPECT_LT(max_diff(ctx.logits(-1), fresh.logits(-1)), 2e-3);
}

TEST_F(ContextPaths, FullContextIsAnErrorNotACrash) {
    Context ctx = make(512);
    Batch b;
    for (int i = 0; i < 65; ++i) b.add(1, i, 0, i == 64);
    EXPECT_THROW(ctx.decode(b), Error);
    Batch bad;
    bad.add(100000, 0, 0, true);
    EXPECT_THROW(ctx.decode(bad), Error);
    EXPECT_THROW(ctx.logits(0), Error);
}

}  // namespace
}  // namespace lcx
