#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/fp16.h"

namespace lcx {
namespace {

// Reference: exact round-to-nearest-even conversion done in double arithmetic.
uint16_t reference_fp32_to_fp16(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    if (std::isnan(f)) return uint16_t(sign | 0x7E00u | ((u >> 13) & 0x3FFu));
    double a = std::fabs(double(f));
    if (a >= 65520.0) return uint16_t(sign | 0x7C00u);  // rounds to infinity
    if (a < std::ldexp(1.0, -14)) {                       // subnormal half
        const double q = a / std::ldexp(1.0, -24);
        double r = std::nearbyint(q);  // default rounding mode: nearest even
        return uint16_t(sign | uint16_t(r));
    }
    int e;
    double m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    double scaled = std::ldexp(m, 11);  // 11 significant bits
    double r = std::nearbyint(scaled);
    if (r == 2048.0) {
        r = 1024.0;
        ++e;
    }
    const int exp_half = e - 1 + 15;
    if (exp_half >= 31) return uint16_t(sign | 0x7C00u);
    return uint16_t(sign | uint16_t(exp_half << 10) | (uint16_t(r) & 0x3FFu));
}

TEST(Fp16, AllHalvesRoundTripThroughFloat) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_fp32(uint16_t(h));
        const bool nan = (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0;
        if (nan) {
            EXPECT_TRUE(std::isnan(f)) << h;
            continue;
        }
        EXPECT_EQ(fp32_to_fp16(f), uint16_t(h)) << "half bits " << h;
    }
}

TEST(Fp16, HalfToFloatMatchesDefinition) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const int exp = int((h >> 10) & 0x1F), man = int(h & 0x3FF);
        const double sign = (h & 0x8000u) ? -1.0 : 1.0;
        if (exp == 31) continue;
        const double expect = exp == 0 ? sign * std::ldexp(double(man), -24)
                                       : sign * std::ldexp(1.0 + man / 1024.0, exp - 15);
        EXPECT_EQ(double(fp16_to_fp32(uint16_t(h))), expect) << h;
    }
    EXPECT_TRUE(std::isinf(fp16_to_fp32(0x7C00)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
}

TEST(Fp16, FloatToHalfRoundsToNearestEven) {
    // Sweep float bit patterns with a stride that hits every exponent and many mantissas,
    // plus the exact halfway points between neighbouring halves.
    for (uint64_t u = 0; u < (1ull << 32); u += 9973) {
        const float f = std::bit_cast<float>(uint32_t(u));
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_fp16(f), reference_fp32_to_fp16(f)) << "float bits " << u;
    }
    for (uint32_t h = 0; h < 0x7BFF; ++h) {
        const float lo = fp16_to_fp32(uint16_t(h)), hi = fp16_to_fp32(uint16_t(h + 1));
        const float mid = float((double(lo) + double(hi)) / 2);
        ASSERT_EQ(fp32_to_fp16(mid), (h & 1) ? uint16_t(h + 1) : uint16_t(h)) << h;
    }
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // halfway to the next binade rounds to inf
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Bf16, RoundsToNearestEvenAndKeepsNaN) {
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
    EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
    // A NaN whose payload sits only in the low bits must stay a NaN, not become Inf.
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0x7F800001u)))));
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = bf16_to_fp32(uint16_t(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_bf16(f), h);
    }
}

}  // namespace
}  // namespace lcx
