// Round trips (quantize then dequantize) on random and edge-case data, with error bounds
// derived from each format's bit width, and the defined behaviour on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fp16.h"
#include "quant/quant.h"

namespace lcx {
namespace {

struct TypeCase {
    DType type;
    int bits;  // bits per weight of the quants (scales not counted); 0 for F16/BF16
};

const TypeCase kCases[] = {
    {DType::F16, 0},  {DType::BF16, 0}, {DType::Q4_0, 4},   {DType::Q4_1, 4},
    {DType::Q5_0, 5}, {DType::Q5_1, 5}, {DType::Q8_0, 8},   {DType::Q8_1, 8},
    {DType::Q2_K, 2}, {DType::Q3_K, 3}, {DType::Q4_K, 4},   {DType::Q5_K, 5},
    {DType::Q6_K, 6}, {DType::Q8_K, 8}, {DType::IQ4_NL, 4}, {DType::IQ4_XS, 4},
};

constexpr int64_t kN = 4096;  // a multiple of every block size (32 and 256)

std::vector<float> round_trip(DType type, const std::vector<float>& x) {
    std::vector<uint8_t> q(row_bytes(type, int64_t(x.size())));
    EXPECT_EQ(quantize_row(type, x.data(), q.data(), int64_t(x.size())), q.size());
    std::vector<float> y(x.size());
    dequantize_row(type, q.data(), y.data(), int64_t(x.size()));
    return y;
}

double rms(const std::vector<float>& v) {
    double s = 0;
    for (float f : v) s += double(f) * double(f);
    return std::sqrt(s / double(v.size()));
}

double rms_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * double(a[i] - b[i]);
    return std::sqrt(s / double(a.size()));
}

bool all_finite(const std::vector<float>& v) {
    for (float f : v)
        if (!std::isfinite(f)) return false;
    return true;
}

// Bound on RMS(error) / RMS(x) for Gaussian data. A uniform quantizer with 2^b levels
// spread over a block's range R has step R / (2^b - 1) and RMS error step / sqrt(12);
// blocks of 16-32 Gaussian samples have R below about 5 sigma. We allow 1.5x that for
// clamping at the block maximum, the rounding of the scales to fp16 / 6 bits, and the
// non-uniform IQ4 grid. F16 / BF16 round each value: relative error <= 2^-11 / 2^-8.
double gaussian_bound(const TypeCase& c) {
    if (c.type == DType::F16) return std::ldexp(1.0, -11);
    if (c.type == DType::BF16) return std::ldexp(1.0, -8);
    return 1.5 * 5.0 / ((std::ldexp(1.0, c.bits) - 1) * std::sqrt(12.0));
}

std::vector<float> gaussian(uint32_t seed, double sigma) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, float(sigma));
    std::vector<float> x(kN);
    for (auto& v : x) v = dist(rng);
    return x;
}

class RoundTrip : public ::testing::TestWithParam<TypeCase> {};

std::string case_name(const ::testing::TestParamInfo<TypeCase>& info) {
    return std::string(dtype_name(info.param.type));
}

TEST_P(RoundTrip, GaussianWithinBitBound) {
    const auto c = GetParam();
    // sigma 1; 1000 (large, yet every scale still fits fp16); 0.02 (typical LLM weights).
    for (double sigma : {1.0, 1000.0, 0.02}) {
        const auto x = gaussian(42, sigma);
        const auto y = round_trip(c.type, x);
        ASSERT_TRUE(all_finite(y));
        const double err = rms_diff(x, y) / rms(x);
        EXPECT_LT(err, gaussian_bound(c)) << "sigma " << sigma;
        RecordProperty("nrmse_sigma_" + std::to_string(int(sigma * 100)), std::to_string(err));
    }
}

TEST_P(RoundTrip, UniformAndOffsetData) {
    // Data that is all positive or has a large offset: formats with a min (Q4_1, Q5_1,
    // K-quants) and without must all stay within the bound relative to the data's RMS.
    const auto c = GetParam();
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(0.5f, 1.5f);
    std::vector<float> x(kN);
    for (auto& v : x) v = dist(rng);
    const auto y = round_trip(c.type, x);
    ASSERT_TRUE(all_finite(y));
    EXPECT_LT(rms_diff(x, y) / rms(x), gaussian_bound(c));
}

TEST_P(RoundTrip, AllZerosGiveZeros) {
    const auto c = GetParam();
    const std::vector<float> x(kN, 0.0f);
    const auto y = round_trip(c.type, x);
    for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(y[size_t(i)], 0.0f) << "element " << i;
}

TEST_P(RoundTrip, ConstantBlocks) {
    // A constant block is exactly representable in every format up to rounding the
    // scale(s) to fp16 (relative 2^-11 each; at most a product of two, plus the value's
    // own F16/BF16 rounding): allow 2^-8 relative, for positive and negative constants.
    const auto c = GetParam();
    for (float v : {0.37f, -2.5f, 1234.5f}) {
        const std::vector<float> x(kN, v);
        const auto y = round_trip(c.type, x);
        for (int64_t i = 0; i < kN; ++i)
            ASSERT_NEAR(y[size_t(i)], v, std::fabs(v) * std::ldexp(1.0, -8))
                << "value " << v << ", element " << i;
    }
}

TEST_P(RoundTrip, SingleOutlierIsKept) {
    // One weight 1000x larger than the rest: the block scale follows the outlier, so the
    // outlier itself must survive to within one quant step of its block: at most
    // 2 / (2^b - 1) of its value (the range spans the small values too), fp16 for F16.
    const auto c = GetParam();
    auto x = gaussian(3, 0.01);
    const size_t at = 1234;
    x[at] = 10.0f;
    const auto y = round_trip(c.type, x);
    ASSERT_TRUE(all_finite(y));
    const double tol = c.bits ? 10.0 * 2.0 / (std::ldexp(1.0, c.bits) - 1) : 10.0 * 0x1p-8;
    EXPECT_NEAR(y[at], 10.0f, tol);
    // Elements in blocks without the outlier keep the Gaussian bound.
    std::vector<float> xs(x.begin(), x.begin() + 1024), ys(y.begin(), y.begin() + 1024);
    EXPECT_LT(rms_diff(xs, ys) / rms(xs), gaussian_bound(c));
}

TEST_P(RoundTrip, SubnormalAndTinyInputStayFiniteAndSmall) {
    // Values far below fp16's range cannot be represented by any block scale; what we
    // require is no crash, finite output, and no error larger than the values
    // themselves (the result may be zero).
    const auto c = GetParam();
    for (double sigma : {1e-39, 1e-30, 1e-9}) {
        const auto x = gaussian(11, sigma);
        const auto y = round_trip(c.type, x);
        ASSERT_TRUE(all_finite(y)) << "sigma " << sigma;
        EXPECT_LE(rms_diff(x, y), 1.0001 * rms(x)) << "sigma " << sigma;
    }
    // Mixed: a block of subnormals next to a block of ordinary values.
    auto x = gaussian(5, 1.0);
    for (int i = 0; i < 256; ++i) x[size_t(i)] = float(i % 7 - 3) * 1e-41f;
    const auto y = round_trip(c.type, x);
    ASSERT_TRUE(all_finite(y));
    std::vector<float> xs(x.begin() + 256, x.end()), ys(y.begin() + 256, y.end());
    EXPECT_LT(rms_diff(xs, ys) / rms(xs), gaussian_bound(c));
}

TEST_P(RoundTrip, NonFiniteInputIsRejectedOrKept) {
    const auto c = GetParam();
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
        auto x = gaussian(1, 1.0);
        x[77] = bad;
        std::vector<uint8_t> q(row_bytes(c.type, kN));
        if (c.bits == 0) {
            // F16 / BF16 represent NaN and Inf: converted as they are.
            quantize_row(c.type, x.data(), q.data(), kN);
            std::vector<float> y(kN);
            dequantize_row(c.type, q.data(), y.data(), kN);
            if (std::isnan(bad))
                EXPECT_TRUE(std::isnan(y[77]));
            else
                EXPECT_EQ(y[77], bad);
            continue;
        }
        try {
            quantize_row(c.type, x.data(), q.data(), kN);
            ADD_FAILURE() << "no error for " << bad;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("element 77"), std::string::npos) << e.what();
        }
        // quantize_rows names the row and the element within it.
        try {
            quantize_rows(c.type, x.data(), q.data(), 4, kN / 4);
            ADD_FAILURE() << "no error for " << bad;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("row 0, element 77"), std::string::npos)
                << e.what();
        }
    }
}

TEST_P(RoundTrip, RowsEqualConcatenatedRows) {
    // quantize_rows is row-wise quantize_row; each row's bytes start at r * row_bytes.
    const auto c = GetParam();
    const auto x = gaussian(9, 1.0);
    const int64_t rows = 4, len = kN / rows;
    std::vector<uint8_t> all(row_bytes(c.type, kN)), one(row_bytes(c.type, len));
    ASSERT_EQ(quantize_rows(c.type, x.data(), all.data(), rows, len), all.size());
    for (int64_t r = 0; r < rows; ++r) {
        quantize_row(c.type, x.data() + r * len, one.data(), len);
        EXPECT_EQ(std::memcmp(one.data(), all.data() + size_t(r) * one.size(), one.size()), 0)
            << "row " << r;
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip, ::testing::ValuesIn(kCases), case_name);

TEST(QuantApi, RejectsBadLengthsAndTypes) {
    std::vector<float> x(300, 1.0f);
    std::vector<uint8_t> q(4096);
    EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), q.data(), 33), Error);
    EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), q.data(), 300), Error);
    EXPECT_THROW(quantize_rows(DType::Q4_K, x.data(), q.data(), 1, 300), Error);
    EXPECT_THROW(dequantize_row(DType::Q6_K, q.data(), x.data(), 100), Error);
    EXPECT_THROW(quantize_row(DType::IQ2_XXS, x.data(), q.data(), 256), Error);
    EXPECT_THROW(dequantize_row(DType::IQ2_XXS, q.data(), x.data(), 256), Error);
    EXPECT_THROW(quantize_row(DType::F32, x.data(), q.data(), 256), Error);
    try {
        quantize_row(DType::Q4_K, x.data(), q.data(), 300);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Q4_K"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(can_quantize(DType::F32));
    EXPECT_TRUE(can_dequantize(DType::F32));
    EXPECT_FALSE(can_quantize(DType::IQ2_XXS));
    EXPECT_TRUE(can_quantize(DType::IQ4_XS));
}

TEST(QuantApi, F32DequantizeIsACopy) {
    const std::vector<float> x = {1.0f, -0.0f, 3.5e-40f, 65504.0f};
    std::vector<float> y(4);
    dequantize_row(DType::F32, x.data(), y.data(), 4);
    EXPECT_EQ(std::memcmp(x.data(), y.data(), sizeof(float) * 4), 0);
}

TEST(QuantApi, Q8_1SumField) {
    // s must hold d * sum(qs), with d = amax / 127 the block scale before it is rounded
    // to fp16 (ggml's definition), itself rounded to fp16: the dot-product kernels use it
    // for the offset term of Q4_1 / Q5_1.
    const auto x = gaussian(21, 1.0);
    std::vector<BlockQ8_1> q(kN / kQK8_1);
    quantize_row_q8_1(x.data(), q.data(), kN);
    for (size_t b = 0; b < q.size(); ++b) {
        float amax = 0;
        for (int i = 0; i < kQK8_1; ++i) amax = std::max(amax, std::fabs(x[b * kQK8_1 + i]));
        int sum = 0;
        for (int8_t v : q[b].qs) sum += v;
        EXPECT_EQ(q[b].s, fp32_to_fp16(float(sum) * (amax / 127)));
        EXPECT_EQ(q[b].d, fp32_to_fp16(amax / 127));
    }
}

TEST(QuantApi, Q8_KBlockSums) {
    // bsums[j] is the sum of quants 16j..16j+15; d is a plain float scale with the
    // largest magnitude mapped to +-127.
    const auto x = gaussian(22, 1.0);
    std::vector<BlockQ8_K> q(kN / kQK_K);
    quantize_row_q8_K(x.data(), q.data(), kN);
    for (const auto& b : q) {
        int amax = 0;
        for (int j = 0; j < kQK_K / 16; ++j) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += b.qs[16 * j + i];
            EXPECT_EQ(b.bsums[j], sum);
        }
        for (int8_t v : b.qs) amax = std::max(amax, std::abs(int(v)));
        EXPECT_EQ(amax, 127);
    }
}

}  // namespace
}  // namespace lcx
