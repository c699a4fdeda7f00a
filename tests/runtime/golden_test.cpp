// End-to-end checks against llama.cpp's outputs (../shared/data/golden, tests/data/golden):
// top-8 logits at every prompt position, greedy continuations (through the logits
// report and through the sampling loop), GGUF v1 equivalence and perplexity.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "golden_support.h"
#include "model/model.h"
#include "model/quantize_model.h"
#include "runtime/context.h"
#include "runtime/generator.h"
#include "runtime/perplexity.h"
#include "runtime/prompt_logits.h"
#include "test_support.h"
#include "vocab/vocab.h"

namespace lcx {
namespace {

using nlohmann::json;

Backend& backend() { return test::golden_backend(); }
using test::read_json;

struct GoldenCase {
    std::string golden;  // under golden/
    std::string model;   // under models/
    float tol;
};

std::string case_name(const testing::TestParamInfo<GoldenCase>& info) {
    std::string n = info.param.golden;
    n = n.substr(0, n.size() - 5);  // .json
    for (char& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return n;
}

class GoldenLogits : public testing::TestWithParam<GoldenCase> {};

// The rules are check_golden's (golden_support.h).
TEST_P(GoldenLogits, MatchesLlamaCpp) {
    const GoldenCase& gc = GetParam();
    LCX_REQUIRE_DATA(golden_path, "golden/" + gc.golden);
    LCX_REQUIRE_DATA(model_path, "models/" + gc.model);
    const test::GoldenResult r = test::check_golden(golden_path, model_path, gc.tol);
    RecordProperty("greedy_steps_compared", int(r.greedy_steps_compared));
}

const GoldenCase kCases[] = {
    {"stories260K.p1.json", "stories260K.gguf", 0.03f},
    {"stories260K.p2.json", "stories260K.gguf", 0.03f},
    {"stories260K.p3.json", "stories260K.gguf", 0.03f},
    {"stories260K-Q4_K_M.p1.json", "stories260K-Q4_K_M.gguf", 0.35f},
    {"stories260K-Q4_K_M.p2.json", "stories260K-Q4_K_M.gguf", 0.35f},
    {"stories260K-Q4_K_M.p3.json", "stories260K-Q4_K_M.gguf", 0.35f},
    {"stories260K-Q6_K.p1.json", "stories260K-Q6_K.gguf", 0.35f},
    {"stories260K-Q6_K.p2.json", "stories260K-Q6_K.gguf", 0.35f},
    {"stories260K-Q6_K.p3.json", "stories260K-Q6_K.gguf", 0.35f},
    {"llama-2-tiny-random.json", "llama-2-tiny-random.gguf", 0.001f},
    {"zoo-F32.json", "zoo/zoo-F32.gguf", 0.005f},
    {"zoo-F16.json", "zoo/zoo-F16.gguf", 0.005f},
    {"zoo-BF16.json", "zoo/zoo-BF16.gguf", 0.015f},
    {"zoo-Q4_0.json", "zoo/zoo-Q4_0.gguf", 0.12f},
    {"zoo-Q4_1.json", "zoo/zoo-Q4_1.gguf", 0.12f},
    {"zoo-Q5_0.json", "zoo/zoo-Q5_0.gguf", 0.12f},
    {"zoo-Q5_1.json", "zoo/zoo-Q5_1.gguf", 0.12f},
    {"zoo-Q8_0.json", "zoo/zoo-Q8_0.gguf", 0.12f},
    {"zoo-Q2_K.json", "zoo/zoo-Q2_K.gguf", 0.12f},
    {"zoo-Q3_K_S.json", "zoo/zoo-Q3_K_S.gguf", 0.12f},
    {"zoo-Q4_K_S.json", "zoo/zoo-Q4_K_S.gguf", 0.12f},
    {"zoo-Q5_K_S.json", "zoo/zoo-Q5_K_S.gguf", 0.12f},
    {"zoo-Q6_K.json", "zoo/zoo-Q6_K.gguf", 0.12f},
    {"zoo-IQ4_NL.json", "zoo/zoo-IQ4_NL.gguf", 0.12f},
    {"zoo-IQ4_XS.json", "zoo/zoo-IQ4_XS.gguf", 0.12f},
    {"stories260K.long.json", "stories260K.gguf", 0.15f},
    {"zoo-Q4_K_S.long.json", "zoo/zoo-Q4_K_S.gguf", 0.15f},
};

INSTANTIATE_TEST_SUITE_P(Golden, GoldenLogits, testing::ValuesIn(kCases), case_name);

// With f16_as_bf16 (--f16-as-bf16), prompts multiply F16 weights in bf16 where the CPU
// can. stories260K converted to F16 (our converter writes llama-quantize's bytes) must still
// follow llama.cpp's logits of the F32 model over the 1324-token prompt, in batches of 512
// rows that take the bf16 panels. bf16 keeps 3 bits fewer than f16: measured, the F32
// model lies up to 0.024 from these logits, its exact F16 conversion 0.073 and the bf16
// products 0.178; 0.25 is allowed.
// A backend that multiplies F16 prompts in bf16, or nullptr (with the reason) where the
// CPU cannot, and stories260K converted to F16 in a temporary file.
struct Bf16Setup {
    std::unique_ptr<Backend> be;
    std::filesystem::path f16;
    ~Bf16Setup() {
        if (!f16.empty()) std::filesystem::remove(f16);
    }
};
std::unique_ptr<Bf16Setup> bf16_setup(const std::filesystem::path& f32_model) {
    auto s = std::make_unique<Bf16Setup>();
    CpuBackendOptions o;
    o.f16_as_bf16 = true;
    s->be = make_cpu_backend(2, o);
    if (s->be->name().find("f16-as-bf16") == std::string::npos) return nullptr;
    s->f16 = std::filesystem::temp_directory_path() /
             ("lcx_golden_f16_" + std::to_string(::getpid()) + ".gguf");
    quantize_model(f32_model, s->f16, "F16", false, 2);
    return s;
}

TEST(GoldenF16AsBf16, LongPromptFollowsTheF32Logits) {
    LCX_REQUIRE_DATA(golden_path, "golden/stories260K.long.json");
    LCX_REQUIRE_DATA(model_path, "models/stories260K.gguf");
    const auto s = bf16_setup(model_path);
    if (!s) GTEST_SKIP() << "this CPU has no AVX-512 BF16 path: F16 prompts stay exact";
    const test::GoldenResult r = test::check_golden(golden_path, s->f16, 0.25f, *s->be);
    RecordProperty("worst_logit_diff", std::to_string(r.worst_logit_diff));
    RecordProperty("greedy_steps_compared", int(r.greedy_steps_compared));
}

// llama-perplexity's figure for the F32 model (128-token chunks, each a bf16 prompt here)
// within 0.1%: measured 2.8592 against 2.8597 (the exact F16 conversion: 2.8596).
TEST(GoldenF16AsBf16, PerplexityStaysWithinATenthOfAPercent) {
    LCX_REQUIRE_DATA(golden_path, "golden/perplexity.json");
    LCX_REQUIRE_DATA(text_path, "text/stories260K-samples.txt");
    LCX_REQUIRE_DATA(model_path, "models/stories260K.gguf");
    const auto s = bf16_setup(model_path);
    if (!s) GTEST_SKIP() << "this CPU has no AVX-512 BF16 path: F16 prompts stay exact";
    const json g = read_json(golden_path);
    const json& want = g["results"][0];
    ASSERT_NE(want["model"].get<std::string>().find("stories260K.gguf"), std::string::npos);
    std::ifstream in(text_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto model = Model::load(s->f16, s->be.get());
    const Vocab vocab = Vocab::from_gguf(model->file());
    const auto tokens = vocab.tokenize(ss.str(), /*add_special=*/true, false);
    ContextParams cp;
    cp.n_ctx = g["n_ctx"].get<int64_t>();
    Context ctx(model, *s->be, cp);
    const PerplexityResult r = compute_perplexity(ctx, tokens, cp.n_ctx, vocab.bos());
    EXPECT_EQ(r.n_chunks, want["chunks"].get<int64_t>());
    EXPECT_NEAR(r.ppl, want["ppl"].get<double>(), 0.001 * want["ppl"].get<double>());
}

// The sampling loop with temperature 0 gives the same continuation as llama.cpp's argmax.
TEST(GoldenGenerate, GreedySamplingFollowsGolden) {
    for (const auto& [golden_rel, model_rel, tol] :
         {std::tuple{"golden/stories260K.p1.json", "models/stories260K.gguf", 0.03f},
          std::tuple{"golden/stories260K.p2.json", "models/stories260K.gguf", 0.03f},
          std::tuple{"golden/zoo-F32.json", "models/zoo/zoo-F32.gguf", 0.005f},
          std::tuple{"golden/llama-2-tiny-random.json", "models/llama-2-tiny-random.gguf",
                     0.001f}}) {
        auto golden_path = test::find_data(golden_rel);
        auto model_path = test::find_data(model_rel);
        if (!golden_path || !model_path)
            GTEST_SKIP() << golden_rel << " or " << model_rel << " not found";
        const json g = read_json(*golden_path);
        const auto prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
        const auto greedy = g["greedy"].get<std::vector<int32_t>>();
        const auto margins = g["greedy_margins"].get<std::vector<float>>();
        auto model = Model::load(*model_path, &backend());
        const Vocab vocab = Vocab::from_gguf(model->file());
        ContextParams cp;
        cp.n_ctx = 256;
        Context ctx(model, backend(), cp);
        SamplerParams sp;
        sp.temperature = 0.0f;
        Sampler sampler(sp);
        GenerateOptions opt;
        opt.n_predict = int32_t(greedy.size());
        const GenerateResult r = generate(ctx, vocab, sampler, prompt, opt, nullptr);
        size_t n = 0;
        while (n < greedy.size() && margins[n] >= 2 * tol) ++n;
        ASSERT_GE(r.tokens.size(), std::min(n, r.tokens.size()));
        for (size_t i = 0; i < n && i < r.tokens.size(); ++i)
            ASSERT_EQ(r.tokens[i], greedy[i]) << golden_rel << " step " << i;
        EXPECT_GT(n, 0u) << golden_rel;
    }
}

// GGUF v1 file of the same weights: the same greedy text as the v3 file.
TEST(GoldenGenerate, GgufV1FileGeneratesTheSameText) {
    LCX_REQUIRE_DATA(v1, "models/tinyllamas-stories-260k-f32.gguf");
    LCX_REQUIRE_DATA(v3, "models/stories260K.gguf");
    LCX_REQUIRE_DATA(golden_path, "golden/stories260K.p1.json");
    const auto prompt = read_json(golden_path)["prompt_tokens"].get<std::vector<int32_t>>();
    std::vector<std::string> texts;
    for (const auto& path : {v1, v3}) {
        auto model = Model::load(path, &backend());
        const Vocab vocab = Vocab::from_gguf(model->file());
        ContextParams cp;
        cp.n_ctx = 128;
        Context ctx(model, backend(), cp);
        SamplerParams sp;
        sp.temperature = 0.0f;
        Sampler sampler(sp);
        GenerateOptions opt;
        opt.n_predict = 64;
        texts.push_back(generate(ctx, vocab, sampler, prompt, opt, nullptr).text);
    }
    EXPECT_FALSE(texts[0].empty());
    EXPECT_EQ(texts[0], texts[1]);
}

// llama-perplexity's numbers (golden/perplexity.json): within 0.1% for F32 files and
// 0.3% for quantized ones.
TEST(GoldenPerplexity, MatchesLlamaPerplexity) {
    LCX_REQUIRE_DATA(golden_path, "golden/perplexity.json");
    LCX_REQUIRE_DATA(text_path, "text/stories260K-samples.txt");
    const json g = read_json(golden_path);
    const int64_t n_ctx = g["n_ctx"].get<int64_t>();
    std::ifstream in(text_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    int checked = 0;
    for (const auto& res : g["results"]) {
        std::string rel = res["model"].get<std::string>();
        rel = rel.substr(rel.find("models/"));
        auto model_path = test::find_data(rel);
        if (!model_path) continue;
        auto model = Model::load(*model_path, &backend());
        const Vocab vocab = Vocab::from_gguf(model->file());
        const auto tokens = vocab.tokenize(text, /*add_special=*/true, false);
        ContextParams cp;
        cp.n_ctx = n_ctx;
        Context ctx(model, backend(), cp);
        const PerplexityResult r = compute_perplexity(ctx, tokens, n_ctx, vocab.bos());
        const bool f32 = rel.find("stories260K.gguf") != std::string::npos;
        const double rel_tol = f32 ? 0.001 : 0.003;
        EXPECT_EQ(r.n_chunks, res["chunks"].get<int64_t>()) << rel;
        EXPECT_NEAR(r.ppl, res["ppl"].get<double>(), rel_tol * res["ppl"].get<double>()) << rel;
        EXPECT_NEAR(r.ppl_error, res["pm"].get<double>(), 0.01 * res["pm"].get<double>()) << rel;
        ++checked;
    }
    if (checked == 0) GTEST_SKIP() << "none of perplexity.json's models found";
}

}  // namespace
}  // namespace lcx

namespace lcx {
namespace {

// The other KV cache types against the same golden file (made with an f16 cache): f32
// keys/values differ from f16 ones by f16 rounding only; q8_0 adds 8-bit quantization.
TEST(GoldenKvCacheTypes, F32AndQ8_0CachesStayClose) {
    LCX_REQUIRE_DATA(golden_path, "golden/zoo-F32.json");
    LCX_REQUIRE_DATA(model_path, "models/zoo/zoo-F32.gguf");
    const json g = read_json(golden_path);
    const auto prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
    auto model = Model::load(model_path, &backend());
    for (const auto& [type, tol] : {std::pair{DType::F32, 0.01f}, std::pair{DType::Q8_0, 0.05f}}) {
        ContextParams cp;
        cp.n_ctx = 64;
        cp.type_k = cp.type_v = type;
        Context ctx(model, backend(), cp);
        const PromptLogits ours = compute_prompt_logits(ctx, prompt, 8, 0);
        float worst = 0.0f;
        for (size_t pos = 0; pos < prompt.size(); ++pos) {
            std::map<int32_t, float> mine(ours.top[pos].begin(), ours.top[pos].end());
            for (const auto& e : g["top_logits"][pos]) {
                auto it = mine.find(e[0].get<int32_t>());
                if (it != mine.end())
                    worst = std::max(worst, std::fabs(it->second - e[1].get<float>()));
            }
        }
        EXPECT_LT(worst, tol) << dtype_name(type);
        std::printf("cache %s: worst top-8 logit difference %.5f\n",
                    std::string(dtype_name(type)).c_str(), worst);
    }
}

}  // namespace
}  // namespace lcx
