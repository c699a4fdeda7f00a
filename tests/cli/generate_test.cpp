// `llama-cxx generate`: greedy text of the bundled model equals llama.cpp's greedy
// continuation; flags and errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "generate_cli_runner.h"
#include "test_support.h"

namespace lcx {
namespace {

using nlohmann::json;

json golden(const std::filesystem::path& p) {
    std::ifstream in(p);
    return json::parse(in);
}

TEST(GenerateCommand, BundledModelGreedyMatchesLlamaCpp) {
    LCX_REQUIRE_DATA(golden_path, "golden/stories260K.p1.json");
    const json g = golden(golden_path);
    // The first 40 steps of p1 all have margins above 2 x 0.03.
    for (int i = 0; i < 40; ++i) ASSERT_GT(g["greedy_margins"][size_t(i)].get<float>(), 0.06f);
    auto r = test::run_cli(cli::add_generate_command,
                           {"generate", "-p", g["prompt"].get<std::string>(), "-n", "40", "--temp",
                            "0", "--no-display-prompt", "-t", "2"});
    ASSERT_EQ(r.error, "");
    ASSERT_FALSE(r.out.empty());
    ASSERT_EQ(r.out.back(), '\n');
    const std::string text = r.out.substr(0, r.out.size() - 1);
    EXPECT_EQ(g["greedy_text"].get<std::string>().rfind(text, 0), 0u) << text;
    EXPECT_GT(text.size(), 100u);
}

TEST(GenerateCommand, EchoesPromptAndStopsAtReversePrompt) {
    LCX_REQUIRE_DATA(golden_path, "golden/stories260K.p1.json");
    const json g = golden(golden_path);
    const std::string prompt = g["prompt"].get<std::string>();
    const std::string full =
        g["greedy_text"].get<std::string>();  // ", there was a little girl named Lily. ..."
    auto r = test::run_cli(cli::add_generate_command, {"generate", "-p", prompt, "-n", "60",
                                                       "--temp", "0", "-r", "Lily", "-t", "2"});
    ASSERT_EQ(r.error, "");
    // Everything up to the first "Lily", without it.
    EXPECT_EQ(r.out, prompt + full.substr(0, full.find("Lily")) + "\n");
}

TEST(GenerateCommand, SeededSamplingIsReproducible) {
    std::vector<std::string> args{"generate", "-n", "24", "-s", "123", "-t", "2"};
    auto a = test::run_cli(cli::add_generate_command, args);
    auto b = test::run_cli(cli::add_generate_command, args);
    ASSERT_EQ(a.error, "");
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.out.rfind("Once upon a time", 0), 0u);  // the default prompt
}

TEST(GenerateCommand, ErrorsAreReported) {
    auto over = test::run_cli(cli::add_generate_command,
                              {"generate", "-p", "Once upon a time there was a dog", "-c", "4"});
    EXPECT_NE(over.error.find("raise -c"), std::string::npos) << over.error;
    auto cache = test::run_cli(cli::add_generate_command, {"generate", "--cache-type", "q4_0"});
    EXPECT_NE(cache.error.find("q4_0"), std::string::npos) << cache.error;
    // stories260K's head dimension 8 cannot hold q8_0 blocks of 32.
    auto q8 = test::run_cli(cli::add_generate_command, {"generate", "--ctk", "q8_0"});
    EXPECT_NE(q8.error.find("Q8_0"), std::string::npos) << q8.error;
    auto missing =
        test::run_cli(cli::add_generate_command, {"generate", "-m", "/nonexistent.gguf"});
    EXPECT_FALSE(missing.error.empty());
}

TEST(GenerateCommand, F32CacheGivesTheSameGreedyText) {
    std::vector<std::string> args{"generate", "-n", "30", "--temp", "0", "-t", "2"};
    auto f16 = test::run_cli(cli::add_generate_command, args);
    args.insert(args.end(), {"--cache-type", "f32"});
    auto f32 = test::run_cli(cli::add_generate_command, args);
    ASSERT_EQ(f32.error, "");
    EXPECT_EQ(f16.out, f32.out);
}

}  // namespace
}  // namespace lcx
