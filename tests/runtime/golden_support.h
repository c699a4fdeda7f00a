// Shared by the golden tests: the comparison of our prompt logits and greedy continuation
// with one of llama.cpp's golden files (the rules are in check_golden's comment).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/prompt_logits.h"

namespace lcx::test {

inline Backend& golden_backend() {
    static std::unique_ptr<Backend> be = make_cpu_backend(2);
    return *be;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

struct GoldenResult {
    float worst_logit_diff = 0.0f;  // over the shared ids of every position's top-8
    size_t greedy_steps_compared = 0;
};

// At every prompt position: golden's top-8 and ours share at least 6 ids, each shared
// id's logit is within tolerance, and the best token agrees wherever golden's top-2 gap
// exceeds the tolerance. Then the greedy continuation matches up to the first step
// where golden's margin is below twice the tolerance. Failures are reported as gtest
// failures of the calling test.
inline GoldenResult check_golden(const std::filesystem::path& golden_path,
                                 const std::filesystem::path& model_path, float tol,
                                 Backend& be = golden_backend()) {
    const nlohmann::json g = read_json(golden_path);
    const auto prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
    const auto greedy = g["greedy"].get<std::vector<int32_t>>();
    const auto margins = g["greedy_margins"].get<std::vector<float>>();

    // Loaded for the backend: the weights it multiplies fastest in a packed layout are
    // repacked, so the comparison covers those kernels too.
    auto model = Model::load(model_path, &be);
    ContextParams cp;
    cp.n_ctx = int64_t(prompt.size() + greedy.size() + 8);
    Context ctx(model, be, cp);
    const PromptLogits ours = compute_prompt_logits(ctx, prompt, 8, int(greedy.size()));

    GoldenResult r;
    EXPECT_EQ(ours.top.size(), prompt.size());
    if (ours.top.size() != prompt.size()) return r;
    for (size_t pos = 0; pos < prompt.size(); ++pos) {
        const auto& gold = g["top_logits"][pos];
        std::map<int32_t, float> mine(ours.top[pos].begin(), ours.top[pos].end());
        int shared = 0;
        for (const auto& e : gold) {
            const int32_t id = e[0].get<int32_t>();
            const float logit = e[1].get<float>();
            auto it = mine.find(id);
            if (it == mine.end()) continue;
            ++shared;
            r.worst_logit_diff = std::max(r.worst_logit_diff, std::fabs(it->second - logit));
            EXPECT_NEAR(it->second, logit, tol) << "position " << pos << ", token " << id;
        }
        EXPECT_GE(shared, 6) << "position " << pos;
        const float gap = gold[0][1].get<float>() - gold[1][1].get<float>();
        if (gap > tol) {
            EXPECT_EQ(ours.top[pos][0].first, gold[0][0].get<int32_t>()) << "position " << pos;
        }
    }

    for (size_t i = 0; i < greedy.size() && i < ours.greedy.size(); ++i) {
        if (margins[i] < 2 * tol) break;
        EXPECT_EQ(ours.greedy[i], greedy[i]) << "greedy step " << i;
        if (ours.greedy[i] != greedy[i]) break;
        ++r.greedy_steps_compared;
    }
    return r;
}

}  // namespace lcx::test
