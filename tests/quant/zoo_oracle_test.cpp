// Checks against llama.cpp's own files: dequantizing the zoo models must reproduce
// gguf-py's dequantized tensor exactly, and quantizing zoo-F32 with our reference
// quantizers must reproduce the bytes llama-quantize --pure wrote into zoo-<TYPE>.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "quant/quant.h"
#include "test_support.h"

namespace lcx {
namespace {

// The zoo file suffixes; Q3_K_S / Q4_K_S / Q5_K_S with --pure hold only Q3_K / Q4_K / Q5_K.
const std::vector<std::string> kZooTypes = {"F16",    "BF16",   "Q4_0",   "Q4_1",  "Q5_0",
                                            "Q5_1",   "Q8_0",   "Q2_K",   "Q6_K",  "Q3_K_S",
                                            "Q4_K_S", "Q5_K_S", "IQ4_NL", "IQ4_XS"};

class ZooDequant : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooDequant, AttnQMatchesGgufPyBitForBit) {
    const std::string t = GetParam();
    LCX_REQUIRE_DATA(model, "models/zoo/zoo-" + t + ".gguf");
    LCX_REQUIRE_DATA(golden, "golden/dequant/zoo-" + t + ".blk.0.attn_q.weight.f32");
    const auto file = gguf::GgufFile::open(model);
    const auto* info = file.find_tensor("blk.0.attn_q.weight");
    ASSERT_NE(info, nullptr);
    const int64_t n = info->n_elements();
    const auto expected_bytes = test::read_file(golden);
    ASSERT_EQ(expected_bytes.size(), size_t(n) * sizeof(float));

    std::vector<float> got(static_cast<size_t>(n));
    dequantize_row(info->type, file.tensor_bytes(*info).data(), got.data(), n);

    // Exact: dequantization is a fixed formula; compare bit patterns (so -0 vs +0 and
    // NaN payloads would count as differences too).
    int64_t first_bad = -1, n_bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t a, b;
        std::memcpy(&a, &got[size_t(i)], 4);
        std::memcpy(&b, expected_bytes.data() + 4 * i, 4);
        if (a != b) {
            if (first_bad < 0) first_bad = i;
            ++n_bad;
        }
    }
    EXPECT_EQ(n_bad, 0) << t << ": " << n_bad << " of " << n << " values differ, first at "
                        << first_bad;
}

INSTANTIATE_TEST_SUITE_P(AllZooTypes, ZooDequant, ::testing::ValuesIn(kZooTypes),
                         [](const auto& info) { return info.param; });

class ZooQuantize : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooQuantize, EveryQuantizedTensorIsByteIdentical) {
    const std::string t = GetParam();
    LCX_REQUIRE_DATA(f32_path, "models/zoo/zoo-F32.gguf");
    LCX_REQUIRE_DATA(q_path, "models/zoo/zoo-" + t + ".gguf");
    const auto f32 = gguf::GgufFile::open(f32_path);
    const auto qf = gguf::GgufFile::open(q_path);

    int n_tensors = 0;
    for (const auto& qi : qf.tensors()) {
        if (qi.type == DType::F32) continue;  // norms stay F32: nothing was quantized
        SCOPED_TRACE(qi.name + " (" + std::string(dtype_name(qi.type)) + ")");
        const auto* fi = f32.find_tensor(qi.name);
        ASSERT_NE(fi, nullptr);
        ASSERT_EQ(fi->type, DType::F32);
        ASSERT_EQ(fi->shape, qi.shape);
        ASSERT_TRUE(can_quantize(qi.type));
        ++n_tensors;

        const int64_t row_len = qi.shape[0];
        const int64_t n_rows = qi.n_elements() / row_len;
        const auto src_bytes = f32.tensor_bytes(*fi);
        std::vector<float> src(size_t(qi.n_elements()));
        std::memcpy(src.data(), src_bytes.data(), src.size() * sizeof(float));
        const auto want = qf.tensor_bytes(qi);
        std::vector<uint8_t> got(want.size());
        ASSERT_EQ(quantize_rows(qi.type, src.data(), got.data(), n_rows, row_len), want.size());
        if (std::memcmp(got.data(), want.data(), want.size()) == 0) continue;

        // Report how far off we are: identical blocks, and the RMS difference between
        // the two dequantized tensors relative to the RMS of the weights.
        const size_t bb = traits(qi.type).block_bytes;
        size_t same = 0, nblocks = want.size() / bb, first_bad = nblocks;
        for (size_t b = 0; b < nblocks; ++b) {
            if (std::memcmp(got.data() + b * bb, want.data() + b * bb, bb) == 0)
                ++same;
            else if (first_bad == nblocks)
                first_bad = b;
        }
        std::vector<float> dg(src.size()), dw(src.size());
        dequantize_row(qi.type, got.data(), dg.data(), qi.n_elements());
        dequantize_row(qi.type, want.data(), dw.data(), qi.n_elements());
        double se = 0, sx = 0;
        for (size_t i = 0; i < src.size(); ++i) {
            se += double(dg[i] - dw[i]) * double(dg[i] - dw[i]);
            sx += double(src[i]) * double(src[i]);
        }
        ADD_FAILURE() << same << " of " << nblocks << " blocks identical (first differing block "
                      << first_bad << "), relative RMS difference " << std::sqrt(se / sx);
    }
    EXPECT_GT(n_tensors, 0) << "no quantized tensors in zoo-" << t;
}

INSTANTIATE_TEST_SUITE_P(AllZooTypes, ZooQuantize, ::testing::ValuesIn(kZooTypes),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lcx
