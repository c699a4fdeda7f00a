// Architectures beyond LLaMA against llama.cpp's outputs: the small random-weight models
// in models/arch/ (one per family) and their golden files, with the golden rules of
// golden_support.h. Their prompts are longer than Gemma 2's sliding window.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "golden_support.h"
#include "model/model.h"
#include "test_support.h"

namespace lcx {
namespace {

struct ArchCase {
    std::string name;  // arch-<name>.gguf / arch-<name>.json
    std::string arch;  // general.architecture
    float tol;
};

class ArchGolden : public testing::TestWithParam<ArchCase> {};

TEST_P(ArchGolden, MatchesLlamaCpp) {
    const ArchCase& c = GetParam();
    LCX_REQUIRE_DATA(golden_path, "golden/arch-" + c.name + ".json");
    LCX_REQUIRE_DATA(model_path, "models/arch/arch-" + c.name + ".gguf");
    EXPECT_EQ(Model::load(model_path)->hparams().arch, c.arch);
    const test::GoldenResult r = test::check_golden(golden_path, model_path, c.tol);
    std::printf("arch-%s: worst top-8 logit difference %.5f (tolerance %.3f), %zu greedy steps\n",
                c.name.c_str(), r.worst_logit_diff, c.tol, r.greedy_steps_compared);
}

const ArchCase kArchCases[] = {
    {"qwen2", "qwen2", 0.01f},           {"qwen2-Q8_0", "qwen2", 0.12f},
    {"qwen2-Q4_0", "qwen2", 0.12f},      {"gemma", "gemma", 0.01f},
    {"gemma2", "gemma2", 0.01f},         {"phi3", "phi3", 0.01f},
    {"starcoder2", "starcoder2", 0.01f},
};

INSTANTIATE_TEST_SUITE_P(Arch, ArchGolden, testing::ValuesIn(kArchCases),
                         [](const testing::TestParamInfo<ArchCase>& info) {
                             std::string n = info.param.name;
                             for (char& ch : n)
                                 if (ch == '-') ch = '_';
                             return n;
                         });

}  // namespace
}  // namespace lcx
