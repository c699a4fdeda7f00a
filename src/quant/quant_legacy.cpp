// Reference quantize / dequantize for the plain float types and the 32-element block
// formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1), following ggml's *_ref functions
// operation for operation so that the bytes match llama-quantize's.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "common/fp16.h"
#include "quant/quant.h"
#include "quant/quant_internal.h"

// Fusing a*b+c into one rounding would change results; keep every product rounded.
// GCC contracts by default in C++ whenever the target has FMA (e.g. -march=native).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lcx {

using quant_detail::trunc_to_i8;
using quant_detail::trunc_to_u8;

void dequantize_row_f16(const uint16_t* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

void quantize_row_f16(const float* x, uint16_t* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_row_bf16(const float* x, uint16_t* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// --- dequantize -------------------------------------------------------------------------

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
    const int64_t nb = n / kQK4_0;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < kQK4_0 / 2; ++j) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[i * kQK4_0 + j] = float(x0) * d;
            y[i * kQK4_0 + j + kQK4_0 / 2] = float(x1) * d;
        }
    }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
    const int64_t nb = n / kQK4_1;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < kQK4_1 / 2; ++j) {
            const int x0 = x[i].qs[j] & 0x0F;
            const int x1 = x[i].qs[j] >> 4;
            y[i * kQK4_1 + j] = float(x0) * d + m;
            y[i * kQK4_1 + j + kQK4_1 / 2] = float(x1) * d + m;
        }
    }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
    const int64_t nb = n / kQK5_0;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < kQK5_0 / 2; ++j) {
            const uint32_t xh0 = ((qh >> j) << 4) & 0x10;
            const uint32_t xh1 = (qh >> (j + 12)) & 0x10;
            const int x0 = int((x[i].qs[j] & 0x0Fu) | xh0) - 16;
            const int x1 = int((x[i].qs[j] >> 4) | xh1) - 16;
            y[i * kQK5_0 + j] = float(x0) * d;
            y[i * kQK5_0 + j + kQK5_0 / 2] = float(x1) * d;
        }
    }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
    const int64_t nb = n / kQK5_1;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < kQK5_1 / 2; ++j) {
            const uint32_t xh0 = ((qh >> j) << 4) & 0x10;
            const uint32_t xh1 = (qh >> (j + 12)) & 0x10;
            const int x0 = int((x[i].qs[j] & 0x0Fu) | xh0);
            const int x1 = int((x[i].qs[j] >> 4) | xh1);
            y[i * kQK5_1 + j] = float(x0) * d + m;
            y[i * kQK5_1 + j + kQK5_1 / 2] = float(x1) * d + m;
        }
    }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
    const int64_t nb = n / kQK8_0;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = float(x[i].qs[j]) * d;
    }
}

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n) {
    const int64_t nb = n / kQK8_1;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < kQK8_1; ++j) y[i * kQK8_1 + j] = float(x[i].qs[j]) * d;
    }
}

// --- quantize ---------------------------------------------------------------------------

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
    constexpr int qk = kQK4_0;
    const int64_t nb = n / qk;
    for (int64_t i = 0; i < nb; ++i) {
        // The value of largest magnitude maps to -8 exactly, so its sign picks the scale's.
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < qk; ++j) {
            const float v = x[i * qk + j];
            if (amax < std::fabs(v)) {
                amax = std::fabs(v);
                max = v;
            }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[i * qk + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const int xi0 = std::min<int>(15, trunc_to_i8(x0 + 8.5f));
            const int xi1 = std::min<int>(15, trunc_to_i8(x1 + 8.5f));
            y[i].qs[j] = uint8_t(uint8_t(xi0) | uint8_t(xi1 << 4));
        }
    }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n) {
    constexpr int qk = kQK4_1;
    const int64_t nb = n / qk;
    for (int64_t i = 0; i < nb; ++i) {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < qk; ++j) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (x[i * qk + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            const int xi0 = std::min<int>(15, trunc_to_i8(x0 + 0.5f));
            const int xi1 = std::min<int>(15, trunc_to_i8(x1 + 0.5f));
            y[i].qs[j] = uint8_t(uint8_t(xi0) | uint8_t(xi1 << 4));
        }
    }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
    constexpr int qk = kQK5_0;
    const int64_t nb = n / qk;
    for (int64_t i = 0; i < nb; ++i) {
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < qk; ++j) {
            const float v = x[i * qk + j];
            if (amax < std::fabs(v)) {
                amax = std::fabs(v);
                max = v;
            }
        }
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[i * qk + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const uint8_t xi0 = uint8_t(std::min<int>(31, trunc_to_i8(x0 + 16.5f)));
            const uint8_t xi1 = uint8_t(std::min<int>(31, trunc_to_i8(x1 + 16.5f)));
            y[i].qs[j] = uint8_t((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        std::memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
    constexpr int qk = kQK5_1;
    const int64_t nb = n / qk;
    for (int64_t i = 0; i < nb; ++i) {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < qk; ++j) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (x[i * qk + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            // ggml does not clamp here: (max - min) * id rounds to at most 31.
            const uint8_t xi0 = trunc_to_u8(x0 + 0.5f);
            const uint8_t xi1 = trunc_to_u8(x1 + 0.5f);
            y[i].qs[j] = uint8_t((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        std::memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
    constexpr int qk = kQK8_0;
    const int64_t nb = n / qk;
    for (int64_t i = 0; i < nb; ++i) {
        float amax = 0.0f;
        for (int j = 0; j < qk; ++j) amax = std::max(amax, std::fabs(x[i * qk + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < qk; ++j) y[i].qs[j] = trunc_to_i8(std::round(x[i * qk + j] * id));
    }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
    constexpr int qk = kQK8_1;
    const int64_t nb = n / qk;
    for (int64_t i = 0; i < nb; ++i) {
        float amax = 0.0f;
        for (int j = 0; j < qk; ++j) amax = std::max(amax, std::fabs(x[i * qk + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < qk / 2; ++j) {
            y[i].qs[j] = trunc_to_i8(std::round(x[i * qk + j] * id));
            y[i].qs[qk / 2 + j] = trunc_to_i8(std::round(x[i * qk + qk / 2 + j] * id));
            sum += y[i].qs[j];
            sum += y[i].qs[qk / 2 + j];
        }
        // s caches d * sum(q) for the offset term of Q4_1 / Q5_1 dot products.
        y[i].s = fp32_to_fp16(float(sum) * d);
    }
}

}  // namespace lcx
