// `llama-cxx perplexity`: output format and input errors (the numbers themselves are
// checked against llama-perplexity in tests/runtime/golden_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "cli/commands.h"
#include "generate_cli_runner.h"
#include "test_support.h"

namespace lcx {
namespace {

TEST(PerplexityCommand, PrintsPplWithUncertainty) {
    LCX_REQUIRE_DATA(model, "models/stories260K.gguf");
    LCX_REQUIRE_DATA(text, "text/stories260K-samples.txt");
    // The first ~1500 bytes (about 350 tokens: 5 chunks of 64) keep the test quick.
    std::ifstream in(text, std::ios::binary);
    std::string head(1500, '\0');
    in.read(head.data(), std::streamsize(head.size()));
    head.resize(size_t(in.gcount()));
    const auto tmp = std::filesystem::temp_directory_path() / "lcx_ppl_head.txt";
    std::ofstream(tmp, std::ios::binary) << head;
    auto r = test::run_cli(cli::add_perplexity_command, {"perplexity", "-m", model.string(), "-f",
                                                         tmp.string(), "-c", "64", "-t", "2"});
    std::filesystem::remove(tmp);
    ASSERT_EQ(r.error, "");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(PPL = ([0-9.]+) \+/- ([0-9.]+))")))
        << r.out;
    const double ppl = std::stod(m[1].str());
    EXPECT_GT(ppl, 1.0);
    EXPECT_LT(ppl, 10.0);  // a trained model on its own kind of text
    EXPECT_GT(std::stod(m[2].str()), 0.0);
}

TEST(PerplexityCommand, TooShortTextIsAnError) {
    LCX_REQUIRE_DATA(model, "models/stories260K.gguf");
    const auto tmp = std::filesystem::temp_directory_path() / "lcx_ppl_short.txt";
    std::ofstream(tmp) << "Once upon a time.";
    auto r = test::run_cli(cli::add_perplexity_command,
                           {"perplexity", "-m", model.string(), "-f", tmp.string(), "-c", "128"});
    std::filesystem::remove(tmp);
    EXPECT_NE(r.error.find("needs at least 256"), std::string::npos) << r.error;
}

TEST(PerplexityCommand, NeedsAModel) {
    auto r = test::run_cli(cli::add_perplexity_command, {"perplexity", "-f", "x.txt"});
    EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace lcx
