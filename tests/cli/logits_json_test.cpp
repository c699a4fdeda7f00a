// `llama-cxx logits --json` reproduces llama.cpp's golden file, tokenization included.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "generate_cli_runner.h"
#include "test_support.h"

namespace lcx {
namespace {

using nlohmann::json;

TEST(LogitsCommand, JsonMatchesGoldenFile) {
    LCX_REQUIRE_DATA(model, "models/stories260K.gguf");
    LCX_REQUIRE_DATA(golden_path, "golden/stories260K.p2.json");
    std::ifstream in(golden_path);
    const json g = json::parse(in);
    const float tol = 0.03f;
    const int n_greedy = 24;
    auto r =
        test::run_cli(cli::add_logits_command,
                      {"logits", "-m", model.string(), "-p", g["prompt"].get<std::string>(),
                       "--top", "8", "--greedy", std::to_string(n_greedy), "--json", "-t", "2"});
    ASSERT_EQ(r.error, "");
    const json ours = json::parse(r.out);
    for (const char* key : {"model", "prompt", "prompt_tokens", "top_logits", "greedy",
                            "greedy_margins", "greedy_text"})
        EXPECT_TRUE(ours.contains(key)) << key;
    EXPECT_EQ(ours["model"], g["model"]);
    EXPECT_EQ(ours["prompt_tokens"], g["prompt_tokens"]);
    ASSERT_EQ(ours["top_logits"].size(), g["top_logits"].size());
    for (size_t pos = 0; pos < g["top_logits"].size(); ++pos) {
        std::map<int, float> mine;
        for (const auto& e : ours["top_logits"][pos]) mine[e[0].get<int>()] = e[1].get<float>();
        ASSERT_EQ(mine.size(), 8u);
        int shared = 0;
        for (const auto& e : g["top_logits"][pos]) {
            auto it = mine.find(e[0].get<int>());
            if (it == mine.end()) continue;
            ++shared;
            EXPECT_NEAR(it->second, e[1].get<float>(), tol);
        }
        EXPECT_GE(shared, 6);
    }
    ASSERT_EQ(ours["greedy"].size(), size_t(n_greedy));
    std::string expected_text;
    for (int i = 0; i < n_greedy; ++i) {
        if (g["greedy_margins"][size_t(i)].get<float>() < 2 * tol) break;
        EXPECT_EQ(ours["greedy"][size_t(i)], g["greedy"][size_t(i)]) << "step " << i;
    }
    // Our text covers fewer tokens than golden's: it must be its beginning.
    const std::string text = ours["greedy_text"].get<std::string>();
    EXPECT_EQ(g["greedy_text"].get<std::string>().rfind(text, 0), 0u) << text;
}

TEST(LogitsCommand, PromptNeedsTheContext) {
    auto r = test::run_cli(cli::add_logits_command, {"logits", "-p", "Once upon a time there was",
                                                     "--greedy", "50", "-c", "16"});
    EXPECT_NE(r.error.find("raise -c"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace lcx
