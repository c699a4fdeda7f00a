// Reference quantize / dequantize for the non-linear 4-bit formats IQ4_NL (blocks of 32)
// and IQ4_XS (super-blocks of 256 with 6-bit sub-block scales), following ggml's
// quantize_row_iq4_nl_impl as llama-quantize calls it without an importance matrix.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/fp16.h"
#include "quant/quant.h"

// Fusing a*b+c into one rounding would change results; keep every product rounded.
// GCC contracts by default in C++ whenever the target has FMA (e.g. -march=native).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lcx {

int best_index_iq4nl(float x) {
    // ggml bisects for the bracketing pair val[mu-1] <= x < val[mu] and then picks the
    // nearer of the two. The levels increase strictly, so mu is simply the number of levels
    // <= x; counting them without branches gives the same pair several times faster
    // (the quantizers call this ~500 times per block). NaN compares false everywhere and
    // ends at the last level in ggml's loop, so it does here too.
    const int8_t* val = kvalues_iq4nl;
    if (x <= float(val[0])) return 0;
    if (x >= float(val[15]) || x != x) return 15;
    int mu = 0;
    for (int k = 1; k < 15; ++k) mu += float(val[k]) <= x ? 1 : 0;
    mu += 1;  // val[0] <= x
    return x - float(val[mu - 1]) < float(val[mu]) - x ? mu - 1 : mu;
}

namespace {

constexpr float kGroupMaxEps = 1e-15f;
// llama-quantize passes 7: the scale is searched over inverse scales
// (values[0] + itry) / max for itry in [-7, 7] around the first guess.
constexpr int kNtry = 7;

// One IQ4_NL block (super_block_size == 32) or one IQ4_XS super-block (256, sub-blocks
// of 32). Weights are x^2 (no importance matrix).
void quantize_iq4_superblock(int super_block_size, const float* x, uint16_t* dh, uint8_t* q4,
                             uint16_t* scales_h, uint8_t* scales_l) {
    constexpr int block_size = 32;
    const int8_t* values = kvalues_iq4nl;
    const int ntry = kNtry;
    float scales[kQK_K / block_size];
    float weight[block_size];
    uint8_t L[kQK_K];

    std::memset(q4, 0, size_t(super_block_size / 2));
    *dh = fp32_to_fp16(0.f);

    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super_block_size / block_size; ++ib) {
        const float* xb = x + ib * block_size;
        uint8_t* Lb = L + ib * block_size;
        for (int j = 0; j < block_size; ++j) weight[j] = xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < block_size; ++j) {
            const float ax = std::fabs(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < kGroupMaxEps) {
            scales[ib] = 0;
            continue;
        }
        float d = ntry > 0 ? -max / float(values[0]) : max / float(values[0]);
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < block_size; ++j) {
            const float al = id * xb[j];
            const int l = best_index_iq4nl(al);
            Lb[j] = uint8_t(l);
            const float q = values[l];
            const float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumqx / sumq2;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = float(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < block_size; ++j) {
                const float al = id * xb[j];
                const int l = best_index_iq4nl(al);
                const float q = values[l];
                const float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        const float abs_d = std::fabs(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if (super_block_size / block_size > 1) {
        // IQ4_XS: quantize the sub-block scales to 6 bits against one fp16 super-scale,
        // then requantize every value with its rounded sub-block scale.
        const int nb = super_block_size / block_size;
        std::memset(scales_h, 0, size_t((nb + 7) / 8) * sizeof(uint16_t));
        const float d = -max_scale / 32;
        *dh = fp32_to_fp16(d);
        const float id = d != 0.0f ? 1 / d : 0.f;
        for (int ib = 0; ib < nb; ++ib) {
            int l = nearest_int(id * scales[ib]);
            l = std::max(-32, std::min(31, l));
            const float dl = d * float(l);
            const float idl = dl != 0.0f ? 1 / dl : 0.f;
            uint8_t* Lb = L + ib * block_size;
            const float* xb = x + ib * block_size;
            for (int j = 0; j < block_size; ++j) Lb[j] = uint8_t(best_index_iq4nl(idl * xb[j]));
            l += 32;
            const uint8_t l_l = uint8_t(l & 0xf);
            const uint8_t l_h = uint8_t(l >> 4);
            if (ib % 2 == 0)
                scales_l[ib / 2] = l_l;
            else
                scales_l[ib / 2] = uint8_t(scales_l[ib / 2] | (l_l << 4));
            scales_h[ib / 8] = uint16_t(scales_h[ib / 8] | (l_h << 2 * (ib % 8)));
        }
    } else {
        *dh = fp32_to_fp16(scales[0]);
        if (ntry > 0) {
            const float id = scales[0] != 0.0f ? 1 / scales[0] : 0;
            for (int j = 0; j < super_block_size; ++j) L[j] = uint8_t(best_index_iq4nl(id * x[j]));
        }
    }

    for (int i = 0; i < super_block_size / 32; ++i)
        for (int j = 0; j < 16; ++j)
            q4[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace

void quantize_row_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n) {
    const int64_t nb = n / kQK4_NL;
    for (int64_t i = 0; i < nb; ++i)
        quantize_iq4_superblock(kQK4_NL, x + kQK4_NL * i, &y[i].d, y[i].qs, nullptr, nullptr);
}

void quantize_row_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n) {
    const int64_t nb = n / kQK_K;
    for (int64_t i = 0; i < nb; ++i)
        quantize_iq4_superblock(kQK_K, x + kQK_K * i, &y[i].d, y[i].qs, &y[i].scales_h,
                                y[i].scales_l);
}

void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n) {
    const int64_t nb = n / kQK4_NL;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* qs = x[i].qs;
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < kQK4_NL / 2; ++j) {
            y[j] = d * float(kvalues_iq4nl[qs[j] & 0xf]);
            y[j + kQK4_NL / 2] = d * float(kvalues_iq4nl[qs[j] >> 4]);
        }
        y += kQK4_NL;
    }
}

void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n) {
    const int64_t nb = n / kQK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* qs = x[i].qs;
        const float d = fp16_to_fp32(x[i].d);
        for (int ib = 0; ib < kQK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * float(ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j + 0] = dl * float(kvalues_iq4nl[qs[j] & 0xf]);
                y[j + 16] = dl * float(kvalues_iq4nl[qs[j] >> 4]);
            }
            y += 32;
            qs += 16;
        }
    }
}

}  // namespace lcx
