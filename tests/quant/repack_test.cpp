// Packed weight layouts (quant/repack.h): the documented byte order, exact round trips,
// and that the layouts never pass for file types.
#include "quant/repack.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/error.h"
#include "quant/quant.h"

namespace lcx {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(rng());
    return v;
}

TEST(Repack, PackedTypesAreNotFileTypes) {
    EXPECT_TRUE(is_packed(DType::Q4_0_R8));
    EXPECT_FALSE(is_packed(DType::Q4_0));
    EXPECT_FALSE(dtype_traits(uint32_t(DType::Q4_0_R8)).has_value());
    EXPECT_FALSE(dtype_from_name("Q4_0_R8").has_value());
    EXPECT_EQ(traits(DType::Q4_0_R8).file_type, DType::Q4_0);
    EXPECT_EQ(traits(DType::Q4_0_R8).row_group, 8);
    EXPECT_EQ(traits(DType::Q4_0).row_group, 1);
    EXPECT_EQ(row_bytes(DType::Q4_0_R8, 4096), row_bytes(DType::Q4_0, 4096));
    EXPECT_EQ(packed_layout(DType::Q4_0), DType::Q4_0_R8);
    EXPECT_EQ(packed_layout(DType::Q4_K), DType::Q4_K_R8);
    EXPECT_EQ(packed_layout(DType::Q8_0), DType::Q8_0_R8);
    EXPECT_EQ(packed_layout(DType::Q5_K), DType::Q5_K_R8);
    EXPECT_EQ(row_bytes(DType::Q5_K_R8, 256) * 8, sizeof(BlockQ5_Kx8));
    EXPECT_FALSE(packed_layout(DType::Q6_K).has_value());
    EXPECT_EQ(traits(DType::Q4_K_R8).file_type, DType::Q4_K);
    EXPECT_EQ(row_bytes(DType::Q4_K_R8, 256) * 8, sizeof(BlockQ4_Kx8));
}

TEST(Repack, CanPackNeedsWholeGroupsAndBlocks) {
    EXPECT_TRUE(can_pack(DType::Q4_0_R8, 16, 64));
    EXPECT_FALSE(can_pack(DType::Q4_0_R8, 12, 64));
    EXPECT_FALSE(can_pack(DType::Q4_0_R8, 16, 48));
    EXPECT_FALSE(can_pack(DType::Q4_0_R8, 0, 64));
    EXPECT_FALSE(can_pack(DType::Q4_0, 16, 64));
    std::vector<uint8_t> a(row_bytes(DType::Q4_0, 64) * 12), b(a.size());
    EXPECT_THROW(pack_rows(DType::Q4_0_R8, a.data(), b.data(), 12, 64), Error);
}

// The layout as documented: block b of group g holds the 8 rows' scales, then vector v's
// byte 4r + j is byte 4v + j of row r's quants.
TEST(Repack, Q4_0x8FollowsTheDocumentedLayout) {
    const int64_t k = 96, n = 16, nb = k / 32;
    const auto src = random_bytes(row_bytes(DType::Q4_0, k) * n, 1);
    std::vector<uint8_t> dst(src.size());
    pack_rows(DType::Q4_0_R8, src.data(), dst.data(), n, k);
    const auto* in = reinterpret_cast<const BlockQ4_0*>(src.data());
    const auto* out = reinterpret_cast<const BlockQ4_0x8*>(dst.data());
    for (int64_t row = 0; row < n; ++row)
        for (int64_t b = 0; b < nb; ++b) {
            const BlockQ4_0& x = in[row * nb + b];
            const BlockQ4_0x8& o = out[(row / 8) * nb + b];
            const int r = int(row % 8);
            EXPECT_EQ(o.d[r], x.d);
            for (int v = 0; v < 4; ++v)
                for (int j = 0; j < 4; ++j)
                    ASSERT_EQ(o.qs[v][4 * r + j], x.qs[4 * v + j])
                        << "row " << row << " block " << b << " byte " << 4 * v + j;
        }
}

TEST(Repack, Q4_Kx8FollowsTheDocumentedLayout) {
    const int64_t k = 512, n = 16, nb = k / 256;
    const auto src = random_bytes(row_bytes(DType::Q4_K, k) * n, 4);
    std::vector<uint8_t> dst(row_bytes(DType::Q4_K_R8, k) * n);
    pack_rows(DType::Q4_K_R8, src.data(), dst.data(), n, k);
    const auto* in = reinterpret_cast<const BlockQ4_K*>(src.data());
    const auto* out = reinterpret_cast<const BlockQ4_Kx8*>(dst.data());
    for (int64_t row = 0; row < n; ++row)
        for (int64_t b = 0; b < nb; ++b) {
            const BlockQ4_K& x = in[row * nb + b];
            const BlockQ4_Kx8& o = out[(row / 8) * nb + b];
            const int r = int(row % 8);
            EXPECT_EQ(o.d[r], x.d);
            EXPECT_EQ(o.dmin[r], x.dmin);
            for (int j = 0; j < 8; ++j) {
                uint8_t sc = 0, mn = 0;
                get_scale_min_k4(j, x.scales, &sc, &mn);
                // Scale and min i = 8j + r: low 4 bits in nibble i / 32 of byte i % 32 of
                // scales_lo / mins_lo, top 2 bits in bits 2 (i / 32) and 4 + 2 (i / 32) of
                // byte i % 32 of high.
                const int i = 8 * j + r, byte = i % 32, half = i / 32;
                EXPECT_EQ((o.scales_lo[byte] >> (4 * half)) & 15, sc & 15) << "sub-block " << j;
                EXPECT_EQ((o.mins_lo[byte] >> (4 * half)) & 15, mn & 15) << "sub-block " << j;
                EXPECT_EQ((o.high[byte] >> (2 * half)) & 3, sc >> 4) << "sub-block " << j;
                EXPECT_EQ((o.high[byte] >> (4 + 2 * half)) & 3, mn >> 4) << "sub-block " << j;
                EXPECT_EQ(q4_kx8_scale(o, j, r), sc);
                EXPECT_EQ(q4_kx8_min(o, j, r), mn);
            }
            for (int p = 0; p < 4; ++p)
                for (int g = 0; g < 8; ++g)
                    for (int i = 0; i < 4; ++i)
                        ASSERT_EQ(o.qs[p][g][4 * r + i], x.qs[32 * p + 4 * g + i])
                            << "row " << row << " pair " << p << " group " << g;
        }
}

// Q5_K_R8's fifth bits as documented: bits 2j and 2j + 1 of byte 4r + i of qh[p][q] are the
// fifth bits of the low and high nibble of byte 4r + i of qs[p][4q + j]; the rest is
// Q4_K_R8's layout (the dequantization tests cover it through unpack_row).
TEST(Repack, Q5_Kx8FollowsTheDocumentedLayout) {
    const int64_t k = 512, n = 16, nb = k / 256;
    const auto src = random_bytes(row_bytes(DType::Q5_K, k) * n, 5);
    std::vector<uint8_t> dst(row_bytes(DType::Q5_K_R8, k) * n);
    pack_rows(DType::Q5_K_R8, src.data(), dst.data(), n, k);
    const auto* in = reinterpret_cast<const BlockQ5_K*>(src.data());
    const auto* out = reinterpret_cast<const BlockQ5_Kx8*>(dst.data());
    for (int64_t row = 0; row < n; ++row)
        for (int64_t b = 0; b < nb; ++b) {
            const BlockQ5_K& x = in[row * nb + b];
            const BlockQ5_Kx8& o = out[(row / 8) * nb + b];
            const int r = int(row % 8);
            for (int p = 0; p < 4; ++p)
                for (int g = 0; g < 8; ++g)
                    for (int i = 0; i < 4; ++i) {
                        ASSERT_EQ(o.qs[p][g][4 * r + i], x.qs[32 * p + 4 * g + i]);
                        // Weight 4g + i of sub-blocks 2p (low nibble) and 2p + 1 (high).
                        const int lo = (x.qh[4 * g + i] >> (2 * p)) & 1;
                        const int hi = (x.qh[4 * g + i] >> (2 * p + 1)) & 1;
                        const int byte = o.qh[p][g / 4][4 * r + i];
                        ASSERT_EQ((byte >> (2 * (g % 4))) & 1, lo)
                            << "row " << row << " pair " << p << " group " << g;
                        ASSERT_EQ((byte >> (2 * (g % 4) + 1)) & 1, hi)
                            << "row " << row << " pair " << p << " group " << g;
                    }
        }
}

// Random bytes reach every scale and min bit pattern: the 12 scale bytes come back exactly.
TEST(Repack, EveryRowUnpacksToItsBytes) {
    for (DType packed : {DType::Q4_0_R8, DType::Q8_0_R8, DType::Q4_K_R8, DType::Q5_K_R8}) {
        const DType file = traits(packed).file_type;
        const int64_t k = 512, n = 24;
        const size_t rb = row_bytes(file, k);
        const auto src = random_bytes(rb * n, 2);
        std::vector<uint8_t> dst(row_bytes(packed, k) * n), row(rb);
        pack_rows(packed, src.data(), dst.data(), n, k);
        EXPECT_NE(0, std::memcmp(src.data(), dst.data(), src.size()));
        for (int64_t r = 0; r < n; ++r) {
            unpack_row(packed, dst.data(), r, k, row.data());
            EXPECT_EQ(0, std::memcmp(row.data(), src.data() + size_t(r) * rb, rb))
                << dtype_name(packed) << " row " << r;
        }
    }
}

TEST(Repack, PackedRowsDequantizeAsTheFileRows) {
    const int64_t k = 128, n = 8;
    std::mt19937 rng(3);
    std::normal_distribution<float> dist;
    std::vector<float> f(size_t(k * n));
    for (auto& v : f) v = dist(rng);
    std::vector<uint8_t> q(row_bytes(DType::Q4_0, k) * n), p(q.size());
    quantize_rows(DType::Q4_0, f.data(), q.data(), n, k);
    pack_rows(DType::Q4_0_R8, q.data(), p.data(), n, k);
    std::vector<float> want(static_cast<size_t>(k)), got(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
        dequantize_row(DType::Q4_0, q.data() + size_t(r) * row_bytes(DType::Q4_0, k), want.data(),
                       k);
        dequantize_packed_row(DType::Q4_0_R8, p.data(), r, k, got.data());
        EXPECT_EQ(want, got) << "row " << r;
    }
}

}  // namespace
}  // namespace lcx
