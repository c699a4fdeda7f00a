// `llama-cxx tokenize` end to end: the ids llama.cpp gives for stories260K's prompt.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "test_support.h"

namespace lcx {
namespace {

test::RunResult run(const std::string& args) { return test::run_binary(args); }

std::string stories_model() {
    const std::filesystem::path bundled = "models/stories260K.gguf";
    if (std::filesystem::exists(bundled)) return bundled.string();
    auto shared = test::find_data("models/stories260K.gguf");
    return shared ? shared->string() : std::string();
}

TEST(CliTokenize, IdsAsJsonArray) {
    const std::string model = stories_model();
    if (model.empty()) GTEST_SKIP() << "stories260K.gguf not found";
    const auto r = run("tokenize -m " + model + " --ids -p 'Once upon a time'");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "[1, 403, 407, 261, 378]\n");
    const auto no_bos = run("tokenize -m " + model + " --ids --no-bos -p 'Once upon a time'");
    EXPECT_EQ(no_bos.out, "[403, 407, 261, 378]\n");
}

TEST(CliTokenize, PiecesPerLineAndStdin) {
    const std::string model = stories_model();
    if (model.empty()) GTEST_SKIP() << "stories260K.gguf not found";
    const auto r = run("tokenize -m " + model + " -p 'Once upon'");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "     1 -> '<s>'\n   403 -> ' Once'\n   407 -> ' upon'\n");
    const auto s = run("tokenize -m " + model + " --ids --stdin < /dev/null");
    EXPECT_EQ(s.status, 0);
    EXPECT_EQ(s.out, "[1]\n");
}

TEST(CliTokenize, ErrorsExitNonZero) {
    const auto missing = run("tokenize -m /nonexistent/model.gguf --ids -p hi");
    EXPECT_NE(missing.status, 0);
    EXPECT_EQ(missing.out, "");
    const std::string model = stories_model();
    if (model.empty()) GTEST_SKIP() << "stories260K.gguf not found";
    const auto two_inputs = run("tokenize -m " + model + " -p hi --stdin < /dev/null");
    EXPECT_NE(two_inputs.status, 0);
}

}  // namespace
}  // namespace lcx
