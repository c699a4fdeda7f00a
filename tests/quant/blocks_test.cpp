// Block layouts against the DType table and ggml's documented packing.
#include "quant/blocks.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "quant/quant.h"
#include "tensor/dtype.h"

namespace lcx {
namespace {

template <class Block>
void expect_geometry(DType type, int64_t block_size) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    EXPECT_EQ(sizeof(Block), traits(type).block_bytes);
    EXPECT_EQ(block_size, traits(type).block_size);
}

TEST(Blocks, SizesAgreeWithDTypeTable) {
    expect_geometry<BlockQ4_0>(DType::Q4_0, kQK4_0);
    expect_geometry<BlockQ4_1>(DType::Q4_1, kQK4_1);
    expect_geometry<BlockQ5_0>(DType::Q5_0, kQK5_0);
    expect_geometry<BlockQ5_1>(DType::Q5_1, kQK5_1);
    expect_geometry<BlockQ8_0>(DType::Q8_0, kQK8_0);
    expect_geometry<BlockQ8_1>(DType::Q8_1, kQK8_1);
    expect_geometry<BlockQ2_K>(DType::Q2_K, kQK_K);
    expect_geometry<BlockQ3_K>(DType::Q3_K, kQK_K);
    expect_geometry<BlockQ4_K>(DType::Q4_K, kQK_K);
    expect_geometry<BlockQ5_K>(DType::Q5_K, kQK_K);
    expect_geometry<BlockQ6_K>(DType::Q6_K, kQK_K);
    expect_geometry<BlockQ8_K>(DType::Q8_K, kQK_K);
    expect_geometry<BlockIQ4_NL>(DType::IQ4_NL, kQK4_NL);
    expect_geometry<BlockIQ4_XS>(DType::IQ4_XS, kQK_K);
}

TEST(Blocks, ScaleMinK4UnpacksHandWorkedExample) {
    // Bytes 0-3: scales of sub-blocks 0-3 (low 6 bits), bytes 4-7: their mins; sub-blocks
    // 4-7 take low 4 bits from bytes 8-11 (scale low nibble, min high nibble) and high
    // 2 bits from the top of bytes 0-3 (scales) and 4-7 (mins). Values worked by hand.
    const uint8_t q[12] = {0xC1, 0x42, 0x03, 0x84, 0x85, 0x06, 0xC7, 0x48, 0x9A, 0xBC, 0xDE, 0xF0};
    const uint8_t want_d[8] = {0x01, 0x02, 0x03, 0x04, 0x3A, 0x1C, 0x0E, 0x20};
    const uint8_t want_m[8] = {0x05, 0x06, 0x07, 0x08, 0x29, 0x0B, 0x3D, 0x1F};
    for (int j = 0; j < 8; ++j) {
        uint8_t d = 0, m = 0;
        get_scale_min_k4(j, q, &d, &m);
        EXPECT_EQ(d, want_d[j]) << "sub-block " << j;
        EXPECT_EQ(m, want_m[j]) << "sub-block " << j;
    }
}

// The all-at-once unpack the kernels use agrees with the per-sub-block definition on
// every bit pattern of a byte in every position.
TEST(Blocks, ScalesMinsK4AllAtOnceMatchesPerSubBlock) {
    for (int v = 0; v < 256; ++v)
        for (int pos = 0; pos < 12; ++pos) {
            uint8_t q[12];
            for (int i = 0; i < 12; ++i) q[i] = uint8_t(i == pos ? v : (37 * i + 11 * v) & 0xFF);
            uint8_t sc[8], mn[8];
            get_scales_mins_k4(q, sc, mn);
            for (int j = 0; j < 8; ++j) {
                uint8_t d, m;
                get_scale_min_k4(j, q, &d, &m);
                ASSERT_EQ(sc[j], d) << v << " " << pos << " " << j;
                ASSERT_EQ(mn[j], m) << v << " " << pos << " " << j;
            }
        }
}

// Q3_K's all-at-once scale unpack agrees with the per-scale definition on every bit
// pattern of a byte in every position; the definition is checked on hand-made bytes.
TEST(Blocks, ScalesQ3kAllAtOnceMatchesPerScale) {
    uint8_t s[12] = {};
    s[0] = 0x5A;        // scale 0 low 4 bits 0xA, scale 8 low 4 bits 0x5
    s[8] = 0b11100100;  // high bits: scale 0 -> 0, 4 -> 1, 8 -> 2, 12 -> 3
    EXPECT_EQ(get_scale_q3k(s, 0), 0xA - 32);
    EXPECT_EQ(get_scale_q3k(s, 8), (0x5 | (2 << 4)) - 32);
    EXPECT_EQ(get_scale_q3k(s, 4), (1 << 4) - 32);
    EXPECT_EQ(get_scale_q3k(s, 12), (3 << 4) - 32);
    for (int v = 0; v < 256; ++v)
        for (int pos = 0; pos < 12; ++pos) {
            uint8_t q[12];
            for (int i = 0; i < 12; ++i) q[i] = uint8_t(i == pos ? v : (37 * i + 11 * v) & 0xFF);
            uint8_t sc[16];
            get_scales_q3k(q, sc);
            for (int j = 0; j < 16; ++j)
                ASSERT_EQ(int(sc[j]) - 32, get_scale_q3k(q, j)) << v << " " << pos << " " << j;
        }
}

TEST(Blocks, Iq4nlTableAndNearestIndex) {
    // The 16 levels are strictly increasing and span [-127, 113].
    for (int i = 1; i < 16; ++i) EXPECT_LT(kvalues_iq4nl[i - 1], kvalues_iq4nl[i]);
    EXPECT_EQ(kvalues_iq4nl[0], -127);
    EXPECT_EQ(kvalues_iq4nl[15], 113);
    // best_index_iq4nl must pick the nearest level (brute force as the definition); exact
    // midpoints go to the upper level.
    for (float x = -140.0f; x <= 130.0f; x += 0.25f) {
        int best = 0;
        for (int i = 1; i < 16; ++i) {
            const float e = std::abs(x - float(kvalues_iq4nl[i]));
            const float eb = std::abs(x - float(kvalues_iq4nl[best]));
            if (e < eb || (e == eb && kvalues_iq4nl[i] > kvalues_iq4nl[best])) best = i;
        }
        EXPECT_EQ(best_index_iq4nl(x), best) << "x = " << x;
    }
}

TEST(Blocks, NearestIntRoundsHalfToEven) {
    EXPECT_EQ(nearest_int(0.0f), 0);
    EXPECT_EQ(nearest_int(0.49f), 0);
    EXPECT_EQ(nearest_int(0.5f), 0);
    EXPECT_EQ(nearest_int(1.5f), 2);
    EXPECT_EQ(nearest_int(2.5f), 2);
    EXPECT_EQ(nearest_int(-2.5f), -2);
    EXPECT_EQ(nearest_int(-3.7f), -4);
    EXPECT_EQ(nearest_int(4194303.0f), 4194303);
    EXPECT_EQ(nearest_int(-4194303.0f), -4194303);
}

}  // namespace
}  // namespace lcx
