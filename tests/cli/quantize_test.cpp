// The model quantizer against llama-quantize's own output files: --pure conversions of
// zoo-F32 must reproduce zoo-<TYPE>, and the Q4_K_M / Q6_K mixes of stories260K (rows of
// 64 and 172, so fallbacks everywhere) must reproduce llama.cpp's files tensor for tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "model/quantize_model.h"
#include "test_support.h"

namespace lcx {
namespace {

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("lcx_quantize_test_" + std::to_string(::getpid()) + "_" + name);
}

// Same tensors, in the same order, with the same types, shapes and bytes.
void expect_same_tensors(const std::filesystem::path& got_path,
                         const std::filesystem::path& want_path) {
    const auto got = gguf::GgufFile::open(got_path);
    const auto want = gguf::GgufFile::open(want_path);
    ASSERT_EQ(got.tensors().size(), want.tensors().size());
    for (size_t i = 0; i < want.tensors().size(); ++i) {
        const auto& g = got.tensors()[i];
        const auto& w = want.tensors()[i];
        SCOPED_TRACE(w.name);
        EXPECT_EQ(g.name, w.name);
        EXPECT_EQ(g.type, w.type) << dtype_name(g.type) << " vs " << dtype_name(w.type);
        EXPECT_EQ(g.shape, w.shape);
        const auto gb = got.tensor_bytes(g), wb = want.tensor_bytes(w);
        ASSERT_EQ(gb.size(), wb.size());
        EXPECT_EQ(std::memcmp(gb.data(), wb.data(), wb.size()), 0) << "tensor bytes differ";
    }
    EXPECT_EQ(got.get_int("general.file_type"), want.get_int("general.file_type"));
    EXPECT_EQ(got.get_int("general.quantization_version"),
              want.get_int("general.quantization_version"));
    // Metadata (same keys, general.file_type and quantization_version moved to the end as
    // llama.cpp's setters do), tensor order, alignment padding: the whole file matches.
    EXPECT_TRUE(test::read_file(got_path) == test::read_file(want_path))
        << "files differ outside the tensor data";
}

class PureZoo : public ::testing::TestWithParam<std::string> {};

TEST_P(PureZoo, ReproducesLlamaQuantizePure) {
    const std::string t = GetParam();
    LCX_REQUIRE_DATA(in, "models/zoo/zoo-F32.gguf");
    LCX_REQUIRE_DATA(want, "models/zoo/zoo-" + t + ".gguf");
    const auto out = temp_path("zoo-" + t + ".gguf");
    const auto r = quantize_model(in, out, t, /*pure=*/true, /*n_threads=*/2);
    EXPECT_GT(r.n_converted, 0);
    EXPECT_EQ(r.n_fallback, 0);  // every zoo row length is a multiple of 256
    expect_same_tensors(out, want);
    std::filesystem::remove(out);
}

// The cheaper types keep this test fast; tests/quant checks every type's bytes.
INSTANTIATE_TEST_SUITE_P(SomeZooTypes, PureZoo,
                         ::testing::Values("F16", "BF16", "Q4_0", "Q5_1", "Q8_0", "Q3_K_S", "Q6_K"),
                         [](const auto& info) { return info.param; });

class StoriesMix : public ::testing::TestWithParam<std::string> {};

TEST_P(StoriesMix, ReproducesLlamaQuantizeMix) {
    const std::string t = GetParam();
    LCX_REQUIRE_DATA(in, "models/stories260K.gguf");
    LCX_REQUIRE_DATA(want, "models/stories260K-" + t + ".gguf");
    const auto out = temp_path("stories-" + t + ".gguf");
    const auto r = quantize_model(in, out, t, /*pure=*/false, /*n_threads=*/1);
    EXPECT_GT(r.n_fallback, 0);  // rows of 64 and 172 cannot hold 256-element blocks
    expect_same_tensors(out, want);
    std::filesystem::remove(out);
}

INSTANTIATE_TEST_SUITE_P(LlamaCppMixes, StoriesMix, ::testing::Values("Q4_K_M", "Q6_K"),
                         [](const auto& info) { return info.param; });

TEST(QuantizeModel, PlanFollowsTheMixRules) {
    LCX_REQUIRE_DATA(in, "models/zoo/zoo-F32.gguf");
    // llama.cpp's Q4_K_M rules worked by hand for zoo (2 layers, rows of 256 and 768, an
    // output.weight of its own): use_more_bits(i, 2) holds only for layer 1
    // (i >= 7*2/8), so attn_v and ffn_down of layer 1 get Q6_K and those of layer 0 Q4_K;
    // output.weight gets Q6_K, token_embd the base Q4_K, norms stay F32.
    int n_checked = 0;
    for (const auto& [name, type] : plan_quantization(in, "Q4_K_M", false)) {
        SCOPED_TRACE(name);
        ++n_checked;
        const bool bumped =
            name.find("attn_v") != std::string::npos || name.find("ffn_down") != std::string::npos;
        if (name.find("_norm") != std::string::npos)
            EXPECT_EQ(type, DType::F32);
        else if (name == "output.weight" || (bumped && name.rfind("blk.1.", 0) == 0))
            EXPECT_EQ(type, DType::Q6_K);
        else
            EXPECT_EQ(type, DType::Q4_K);
    }
    EXPECT_EQ(n_checked, 3 + 2 * 9);
    // --pure: every matrix Q4_K, no role-based bumps.
    for (const auto& [name, type] : plan_quantization(in, "Q4_K_M", true)) {
        SCOPED_TRACE(name);
        EXPECT_EQ(type, name.find("_norm") != std::string::npos ? DType::F32 : DType::Q4_K);
    }
}

TEST(QuantizeModel, RejectsUnknownTypeAndMissingFile) {
    LCX_REQUIRE_DATA(in, "models/zoo/zoo-F32.gguf");
    const auto out = temp_path("never.gguf");
    EXPECT_THROW(quantize_model(in, out, "Q9_Z", false, 1), Error);
    EXPECT_THROW(quantize_model(temp_path("missing.gguf"), out, "Q8_0", false, 1), Error);
    EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(QuantizeCli, PureQ8_0) {
    LCX_REQUIRE_DATA(in, "models/zoo/zoo-F32.gguf");
    LCX_REQUIRE_DATA(want, "models/zoo/zoo-Q8_0.gguf");
    const auto out = temp_path("cli-q8_0.gguf");
    const std::string cmd = test::binary_path() + " quantize --pure -t 2 '" + in.string() + "' '" +
                            out.string() + "' Q8_0 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    expect_same_tensors(out, want);
    std::filesystem::remove(out);
    const std::string bad = test::binary_path() + " quantize '" + in.string() + "' '" +
                            out.string() + "' NOPE 2>/dev/null";
    EXPECT_NE(std::system(bad.c_str()), 0);
}

// quantize holds one converted tensor at a time, a chunk of it as floats: its peak stays
// well under the size of its input (the whole output in memory took 455 MiB here, the
// whole tensor as floats 184 MiB).
TEST(QuantizeCli, PeakMemoryStaysBelowHalfTheInput) {
    const auto f16 = temp_path("smollm-F16.gguf"), q8 = temp_path("smollm-Q8_0.gguf");
    ASSERT_EQ(test::run_binary_peak(
                  {"make-model", "--shape", "smollm-135m", "--type", "F16", "-o", f16.string()})
                  .status,
              0);
    const auto input = std::filesystem::file_size(f16);
    const auto r = test::run_binary_peak({"quantize", f16.string(), q8.string(), "Q8_0"});
    std::filesystem::remove(f16);
    std::filesystem::remove(q8);
    ASSERT_EQ(r.status, 0);
    EXPECT_LT(double(r.max_rss_kib) * 1024, 0.5 * double(input))
        << "peak " << r.max_rss_kib / 1024 << " MiB for " << input / (1 << 20) << " MiB of input";
}

}  // namespace
}  // namespace lcx
