// Activation conversion (shared by all paths, so they see identical quantized inputs) and
// the scalar reference matmul.
#include <cmath>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "common/error.h"
#include "common/fp16.h"
#include "quant/quant.h"
#include "quant/repack.h"

namespace lcx::cpu {

ActKind act_kind_for(DType t) {
    switch (t) {
        case DType::F32:
            return ActKind::F32;
        case DType::F16:
            return ActKind::F16;
        case DType::BF16:
            return ActKind::BF16;
        case DType::Q4_0:
        case DType::Q4_0_R8:
        case DType::Q5_0:
        case DType::Q8_0:
        case DType::Q8_0_R8:
        case DType::IQ4_NL:
            return ActKind::Q8_0;
        case DType::Q4_1:
        case DType::Q5_1:
            return ActKind::Q8_1;
        default:
            return ActKind::Q8_K;
    }
}

bool matmul_supported(DType t) {
    switch (t) {
        case DType::F32:
        case DType::F16:
        case DType::BF16:
        case DType::Q4_0:
        case DType::Q4_0_R8:
        case DType::Q4_1:
        case DType::Q5_0:
        case DType::Q5_1:
        case DType::Q8_0:
        case DType::Q8_0_R8:
        case DType::Q2_K:
        case DType::Q3_K:
        case DType::Q4_K:
        case DType::Q4_K_R8:
        case DType::Q5_K:
        case DType::Q5_K_R8:
        case DType::Q6_K:
        case DType::IQ4_NL:
        case DType::IQ4_XS:
            return true;
        default:
            return false;
    }
}

void check_packed_range(const Tensor& w, int64_t n0, int64_t n1) {
    const int64_t g = traits(w.type()).row_group;
    if (n0 % g != 0 || n1 % g != 0)
        throw Error("matmul: rows [" + std::to_string(n0) + ", " + std::to_string(n1) + ") of " +
                    std::string(dtype_name(w.type())) + " weight '" + w.name() +
                    "' do not start and end on a group of " + std::to_string(g));
}

void act_resize(ActRows& a, ActKind kind, int64_t k, int64_t m) {
    a.kind = kind;
    a.k = k;
    a.m = m;
    const auto n = size_t(k * m);
    // resize() keeps capacity, so a context reusing one ActRows allocates only while the
    // batch grows.
    switch (kind) {
        case ActKind::F32:
        case ActKind::F16:
            a.f.resize(n);
            a.ft.resize(n);
            break;
        case ActKind::BF16:
            a.f.resize(n);
            a.ft.resize(n);
            a.h.resize(n);
            a.pt.resize(n / 2);
            break;
        case ActKind::Q8_0:
        case ActKind::Q8_1:
            a.q.resize(n);
            a.qt.resize(n);
            a.xs.resize(n / 32);
            a.d.resize(n / 32);
            a.s32.resize(n / 32);
            break;
        case ActKind::Q8_K:
            a.q.resize(n);
            a.qt.resize(n);
            a.d.resize(n / 256);
            a.s32.resize(n / 32);
            a.s16.resize(n / 16);
            a.b16.resize(n / 16);
            break;
    }
}

void act_convert(ActRows& a, const float* x, size_t x_stride, int64_t m0, int64_t m1,
                 const KernelTable* fast) {
    const int64_t k = a.k;
    for (int64_t i = m0; i < m1; ++i) {
        const float* xr = x + size_t(i) * x_stride;
        if (fast && fast->act_row && fast->act_row(a, xr, i)) continue;
        switch (a.kind) {
            case ActKind::F32:
                std::memcpy(a.f.data() + i * k, xr, size_t(k) * 4);
                break;
            case ActKind::F16: {
                float* out = a.f.data() + i * k;
                for (int64_t j = 0; j < k; ++j) out[j] = fp16_to_fp32(fp32_to_fp16(xr[j]));
                break;
            }
            case ActKind::BF16: {
                float* out = a.f.data() + i * k;
                uint16_t* hb = a.h.data() + i * k;
                for (int64_t j = 0; j < k; ++j) {
                    hb[j] = fp32_to_bf16(xr[j]);
                    out[j] = bf16_to_fp32(hb[j]);
                }
                break;
            }
            case ActKind::Q8_0:
            case ActKind::Q8_1: {
                // Q8_1 has the same quants and scale as Q8_0; its fp16 sum field is replaced
                // by the exact float sum below.
                const int64_t nb = k / 32;
                BlockQ8_0 blk[8];
                for (int64_t b0 = 0; b0 < nb; b0 += 8) {
                    const int64_t cnt = std::min<int64_t>(8, nb - b0);
                    quantize_row_q8_0(xr + b0 * 32, blk, cnt * 32);
                    for (int64_t b = 0; b < cnt; ++b) {
                        const float d = fp16_to_fp32(blk[b].d);
                        int sum = 0;
                        for (int j = 0; j < 32; ++j) sum += blk[b].qs[j];
                        std::memcpy(a.q.data() + i * k + (b0 + b) * 32, blk[b].qs, 32);
                        a.d[size_t(i * nb + b0 + b)] = d;
                        a.s32[size_t(i * nb + b0 + b)] = d * float(sum);
                        a.xs[size_t(i * nb + b0 + b)] = sum;
                    }
                }
                break;
            }
            case ActKind::Q8_K: {
                const int64_t nb = k / 256;
                BlockQ8_K blk;
                for (int64_t b = 0; b < nb; ++b) {
                    quantize_row_q8_K(xr + b * 256, &blk, 256);
                    std::memcpy(a.q.data() + i * k + b * 256, blk.qs, 256);
                    a.d[size_t(i * nb + b)] = blk.d;
                    for (int j = 0; j < 16; ++j) {
                        a.s16[size_t(i * k / 16 + b * 16 + j)] = blk.d * float(blk.bsums[j]);
                        a.b16[size_t(i * k / 16 + b * 16 + j)] = blk.bsums[j];
                    }
                    for (int j = 0; j < 8; ++j)
                        a.s32[size_t(i * k / 32 + b * 8 + j)] =
                            blk.d * float(blk.bsums[2 * j] + blk.bsums[2 * j + 1]);
                }
                break;
            }
        }
    }
}

namespace {

// Activation row m as floats: the values the 8-bit quants stand for.
void act_row_float(const ActRows& a, int64_t m, float* out) {
    const int64_t k = a.k;
    switch (a.kind) {
        case ActKind::F32:
        case ActKind::F16:
        case ActKind::BF16:
            std::memcpy(out, a.f_row(m), size_t(k) * 4);
            break;
        case ActKind::Q8_0:
        case ActKind::Q8_1:
        case ActKind::Q8_K: {
            const int8_t* q = a.q_row(m);
            const float* d = a.d_row(m);
            const int64_t bs = a.kind == ActKind::Q8_K ? 256 : 32;
            for (int64_t j = 0; j < k; ++j) out[j] = float(q[j]) * d[j / bs];
            break;
        }
    }
}

}  // namespace

void matmul_ref(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y,
                size_t y_stride) {
    const int64_t k = a.k;
    std::vector<float> wrow(static_cast<size_t>(k));
    std::vector<float> xrow(static_cast<size_t>(k * a.m));
    for (int64_t m = 0; m < a.m; ++m) act_row_float(a, m, xrow.data() + m * k);
    for (int64_t n = n0; n < n1; ++n) {
        if (is_packed(w.type()))
            dequantize_packed_row(w.type(), w.data(), n, k, wrow.data());
        else
            dequantize_row(w.type(), w.row(n), wrow.data(), k);
        for (int64_t m = 0; m < a.m; ++m) {
            const float* xr = xrow.data() + m * k;
            double sum = 0;
            for (int64_t j = 0; j < k; ++j) sum += double(wrow[size_t(j)]) * double(xr[j]);
            y[size_t(m) * y_stride + size_t(n)] = float(sum);
        }
    }
}

#if !(defined(__x86_64__) || defined(_M_X64))
const KernelTable& kernels_avx512() {
    static const KernelTable t;
    return t;
}
const KernelTable& kernels_avx2() {
    static const KernelTable t;
    return t;
}
#endif

}  // namespace lcx::cpu
