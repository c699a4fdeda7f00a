// Matrix products: the scalar reference against an independent definition (quant/'s
// dequantizers and double-precision dot products), and every SIMD path against the
// scalar reference, on odd shapes with tails, for every weight type.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/gemm_avx2.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "common/error.h"
#include "common/fp16.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/repack.h"

namespace lcx {
namespace {

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,   DType::Q4_1,
                        DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,   DType::Q3_K,
                        DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};

bool is_k(DType t) {
    return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K ||
           t == DType::Q6_K || t == DType::IQ4_XS;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

Tensor make_weight(DType t, int64_t k, int64_t n, uint32_t seed) {
    auto f = random_floats(size_t(k * n), seed);
    Tensor w = Tensor::zeros(t, {k, n});
    if (t == DType::F32)
        std::memcpy(w.data(), f.data(), f.size() * 4);
    else
        quantize_rows(t, f.data(), w.data(), n, k);
    return w;
}

Tensor make_input(int64_t k, int64_t m, uint32_t seed) {
    auto f = random_floats(size_t(k * m), seed, 2.0f);
    Tensor x = Tensor::zeros(DType::F32, {k, m});
    std::memcpy(x.data(), f.data(), f.size() * 4);
    return x;
}

// The activation as the weight type's dot product sees it, via quant/ only.
std::vector<float> act_as_seen(DType wt, const float* x, int64_t k) {
    std::vector<float> out(static_cast<size_t>(k));
    DType vt;
    switch (wt) {
        case DType::F32:
            std::memcpy(out.data(), x, size_t(k) * 4);
            return out;
        case DType::F16:
        case DType::BF16:
            vt = wt;
            break;
        case DType::Q4_1:
        case DType::Q5_1:
            vt = DType::Q8_1;
            break;
        case DType::Q4_0:
        case DType::Q5_0:
        case DType::Q8_0:
        case DType::IQ4_NL:
            vt = DType::Q8_0;
            break;
        default:
            vt = DType::Q8_K;
            break;
    }
    std::vector<uint8_t> buf(row_bytes(vt, k));
    quantize_row(vt, x, buf.data(), k);
    dequantize_row(vt, buf.data(), out.data(), k);
    return out;
}

struct Case {
    int64_t k, n, m;
};

std::vector<Case> cases_for(DType t) {
    // Small M takes the decode kernels (up to 6 rows on AVX2 for formats that have one,
    // else 2), larger M the tiled ones: both occur here for every format.
    if (is_k(t)) return {{256, 37, 1}, {512, 19, 5}, {768, 33, 11}, {1280, 9, 2}};
    // Legacy: K = 96 and 288 leave blocks after the last group of 8 (the kernels' tail);
    // K = 800 is 16 + 8 + 1 blocks (every loop of the decode kernels).
    // M = 9 and 14 end the tiled kernels' 4-row tiles with 1 and 2 rows left.
    std::vector<Case> cs{{96, 21, 1},   {288, 37, 3},  {512, 19, 9},
                         {256, 23, 14}, {1024, 17, 2}, {800, 13, 1}};
    // M = 70 reaches the float formats' panels (from 64 rows; 70 = 11 tiles of 6 + 4),
    // and K = 259 their tail after the last 8 values.
    if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
        cs.push_back({288, 37, 70});
        cs.push_back({259, 21, 70});
        cs.push_back({259, 21, 3});
    }
    return cs;
}

// Σ|w x| over the row pair: the scale for summation-order tolerances.
double abs_dot(const std::vector<float>& w, const std::vector<float>& x) {
    double s = 0;
    for (size_t i = 0; i < w.size(); ++i) s += std::fabs(double(w[i]) * double(x[i]));
    return s;
}

TEST(Matmul, ReferenceMatchesIndependentDefinition) {
    auto be = make_cpu_backend(1, {CpuPath::Scalar});
    for (DType t : kTypes) {
        for (const Case& c : cases_for(t)) {
            Tensor w = make_weight(t, c.k, c.n, 1);
            Tensor x = make_input(c.k, c.m, 2);
            Tensor y = Tensor::zeros(DType::F32, {c.n, c.m});
            be->matmul(w, x, y);
            std::vector<float> wr(static_cast<size_t>(c.k));
            for (int64_t mi = 0; mi < c.m; ++mi) {
                auto xs = act_as_seen(t, x.data_as<float>() + mi * c.k, c.k);
                for (int64_t ni = 0; ni < c.n; ++ni) {
                    dequantize_row(t, w.row(ni), wr.data(), c.k);
                    double want = 0;
                    for (int64_t i = 0; i < c.k; ++i) want += double(wr[size_t(i)]) * xs[size_t(i)];
                    // Same products in double; only the final rounding to float differs.
                    const double tol = 1e-6 * abs_dot(wr, xs) + 1e-6;
                    ASSERT_NEAR(y.data_as<float>()[mi * c.n + ni], want, tol)
                        << dtype_name(t) << " k=" << c.k << " n=" << ni << " m=" << mi;
                }
            }
        }
    }
}

void compare_path(CpuPath path) {
    if (!cpu_path_supported(path)) GTEST_SKIP() << cpu_path_name(path) << " not supported here";
    auto ref = make_cpu_backend(1, {CpuPath::Scalar});
    auto fast = make_cpu_backend(2, {path});
    for (DType t : kTypes) {
        for (const Case& c : cases_for(t)) {
            Tensor w = make_weight(t, c.k, c.n, 3);
            Tensor x = make_input(c.k, c.m, 4);
            Tensor y0 = Tensor::zeros(DType::F32, {c.n, c.m});
            Tensor y1 = Tensor::zeros(DType::F32, {c.n, c.m});
            ref->matmul(w, x, y0);
            fast->matmul(w, x, y1);
            std::vector<float> wr(static_cast<size_t>(c.k));
            for (int64_t mi = 0; mi < c.m; ++mi) {
                auto xs = act_as_seen(t, x.data_as<float>() + mi * c.k, c.k);
                for (int64_t ni = 0; ni < c.n; ++ni) {
                    dequantize_row(t, w.row(ni), wr.data(), c.k);
                    // The fast path sums in float in another order, and applies block scales
                    // to integer sums instead of to each product: a few float roundings per
                    // block on values bounded by Σ|w x|.
                    const double tol = 2e-5 * abs_dot(wr, xs) + 1e-5;
                    ASSERT_NEAR(y1.data_as<float>()[mi * c.n + ni],
                                y0.data_as<float>()[mi * c.n + ni], tol)
                        << cpu_path_name(path) << " " << dtype_name(t) << " k=" << c.k
                        << " n=" << ni << " m=" << mi;
                }
            }
        }
    }
}

TEST(Matmul, Avx512MatchesReference) { compare_path(CpuPath::Avx512); }
TEST(Matmul, Avx2MatchesReference) { compare_path(CpuPath::Avx2); }

// Weights and activations at the ends of their ranges: every quant at its largest
// magnitude, so the kernels' 16-bit partial sums are as large as they can get. Rows
// alternate between the two extreme patterns (mostly the top quant, mostly the bottom one)
// and activation rows between all +1 and all -1 (quants +127 and -127).
TEST(Matmul, ExtremeQuantsMatchReference) {
    const int64_t k = 512, n = 19, m = 9;
    std::vector<float> wf(size_t(k * n)), xf(size_t(k * m));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < k; ++i)
            wf[size_t(r * k + i)] = ((i % 16 == 0) == (r % 2 == 0)) ? 1.0f : -1.0f;
    for (int64_t c = 0; c < m; ++c)
        for (int64_t i = 0; i < k; ++i) xf[size_t(c * k + i)] = c % 2 ? -1.0f : 1.0f;
    Tensor x = Tensor::zeros(DType::F32, {k, m});
    std::memcpy(x.data(), xf.data(), xf.size() * 4);
    auto ref = make_cpu_backend(1, {CpuPath::Scalar});
    for (CpuPath path : {CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        auto fast = make_cpu_backend(2, {path});
        for (DType t : kTypes) {
            if (t == DType::F32 || t == DType::F16 || t == DType::BF16) continue;
            Tensor w = Tensor::zeros(t, {k, n});
            quantize_rows(t, wf.data(), w.data(), n, k);
            Tensor y0 = Tensor::zeros(DType::F32, {n, m});
            Tensor y1 = Tensor::zeros(DType::F32, {n, m});
            ref->matmul(w, x, y0);
            fast->matmul(w, x, y1);
            for (int64_t i = 0; i < n * m; ++i) {
                const float want = y0.data_as<float>()[i];
                ASSERT_NEAR(y1.data_as<float>()[i], want, 2e-5 * std::fabs(want) + 1e-3)
                    << cpu_path_name(path) << " " << dtype_name(t) << " at " << i;
            }
        }
    }
}

// K-quant blocks of arbitrary bytes (every scale, min, high-bit and sign pattern, which
// quantizing smooth data does not reach), with finite f16 super-block scales: the SIMD
// paths against the reference for decode, a few rows and the panels.
template <class B>
Tensor random_blocks(DType t, int64_t k, int64_t n, std::mt19937& rng) {
    Tensor w = Tensor::zeros(t, {k, n});
    auto* b = static_cast<B*>(w.data());
    const int64_t nb = n * k / 256;
    std::uniform_real_distribution<float> d(-0.02f, 0.02f);
    for (int64_t i = 0; i < nb; ++i) {
        auto* bytes = reinterpret_cast<uint8_t*>(b + i);
        for (size_t j = 0; j < sizeof(B); ++j) bytes[j] = uint8_t(rng());
        b[i].d = fp32_to_fp16(d(rng));
        if constexpr (requires { b[i].dmin; }) b[i].dmin = fp32_to_fp16(d(rng));
    }
    return w;
}

TEST(Matmul, ArbitraryKQuantBytesMatchReference) {
    const int64_t k = 512, n = 19;
    std::mt19937 rng(5);
    const Tensor ws[] = {random_blocks<BlockQ2_K>(DType::Q2_K, k, n, rng),
                         random_blocks<BlockQ3_K>(DType::Q3_K, k, n, rng),
                         random_blocks<BlockQ4_K>(DType::Q4_K, k, n, rng),
                         random_blocks<BlockQ5_K>(DType::Q5_K, k, n, rng),
                         random_blocks<BlockQ6_K>(DType::Q6_K, k, n, rng),
                         random_blocks<BlockIQ4_XS>(DType::IQ4_XS, k, n, rng)};
    auto ref = make_cpu_backend(1, {CpuPath::Scalar});
    for (CpuPath path : {CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        auto fast = make_cpu_backend(2, {path});
        for (const Tensor& w : ws)
            for (int64_t m : {1, 4, 37}) {
                Tensor x = make_input(k, m, uint32_t(m));
                Tensor y0 = Tensor::zeros(DType::F32, {n, m});
                Tensor y1 = Tensor::zeros(DType::F32, {n, m});
                ref->matmul(w, x, y0);
                fast->matmul(w, x, y1);
                std::vector<float> wr(static_cast<size_t>(k));
                for (int64_t mi = 0; mi < m; ++mi) {
                    auto xs = act_as_seen(w.type(), x.data_as<float>() + mi * k, k);
                    for (int64_t ni = 0; ni < n; ++ni) {
                        dequantize_row(w.type(), w.row(ni), wr.data(), k);
                        const double tol = 2e-5 * abs_dot(wr, xs) + 1e-5;
                        ASSERT_NEAR(y1.data_as<float>()[mi * n + ni],
                                    y0.data_as<float>()[mi * n + ni], tol)
                            << cpu_path_name(path) << " " << dtype_name(w.type()) << " m=" << m
                            << " n=" << ni << " row " << mi;
                    }
                }
            }
    }
}

// The SIMD activation conversion must give the reference's bytes exactly (every path
// sees identical quantized inputs), including values that land on x.5 after scaling.
TEST(Matmul, FastActivationConversionIsExact) {
    const cpu::KernelTable* tables[] = {
        cpu_path_supported(CpuPath::Avx2) ? &cpu::kernels_avx2() : nullptr,
        cpu_path_supported(CpuPath::Avx512) ? &cpu::kernels_avx512() : nullptr};
    for (const cpu::KernelTable* t : tables) {
        if (!t || !t->act_row) continue;
        for (cpu::ActKind kind :
             {cpu::ActKind::Q8_0, cpu::ActKind::Q8_1, cpu::ActKind::F16, cpu::ActKind::Q8_K}) {
            const int64_t k = kind == cpu::ActKind::F16    ? 1059
                              : kind == cpu::ActKind::Q8_K ? 1024
                                                           : 1056,
                          m = 3;
            auto x = random_floats(size_t(k * m), 11, 3.0f);
            // Block 0 of row 0: amax 127 makes the scale +-1, so these hit the rounding
            // ties; -127 after 127 checks that Q8_K takes the first of equal magnitudes.
            const float ties[] = {127.0f, 0.5f,    -0.5f,       1.5f,   -2.5f,
                                  126.5f, -126.5f, 0.49999997f, -127.0f};
            std::memcpy(x.data(), ties, sizeof(ties));
            // An all-zero block (a whole super-block for Q8_K).
            for (int j = 0; j < (kind == cpu::ActKind::Q8_K ? 256 : 32); ++j)
                x[size_t(k + j)] = 0.0f;
            cpu::ActRows r, f;
            cpu::act_resize(r, kind, k, m);
            cpu::act_resize(f, kind, k, m);
            cpu::act_convert(r, x.data(), size_t(k), 0, m);
            cpu::act_convert(f, x.data(), size_t(k), 0, m, t);
            if (kind == cpu::ActKind::F16) {
                EXPECT_EQ(0, std::memcmp(r.f.data(), f.f.data(), r.f.size() * 4));
            } else {
                EXPECT_EQ(r.q, f.q);
                EXPECT_EQ(0, std::memcmp(r.d.data(), f.d.data(), r.d.size() * 4));
                EXPECT_EQ(0, std::memcmp(r.s32.data(), f.s32.data(), r.s32.size() * 4));
                if (kind == cpu::ActKind::Q8_K) {
                    EXPECT_EQ(0, std::memcmp(r.s16.data(), f.s16.data(), r.s16.size() * 4));
                    EXPECT_EQ(r.b16, f.b16);
                }
            }
        }
    }
}

TEST(Matmul, BitIdenticalForAnyThreadCount) {
    const CpuPath path = cpu_best_path();
    for (DType t : {DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::F16, DType::Q8_0}) {
        for (int64_t m : {3, 70}) {  // the small-batch kernels and the tiled ones
            Tensor w = make_weight(t, 512, 100, 5);
            Tensor x = make_input(512, m, 6);
            const size_t n_out = size_t(100 * m);
            std::vector<std::vector<float>> outs;
            for (int nt : {1, 2, 3}) {
                auto be = make_cpu_backend(nt, {path});
                Tensor y = Tensor::zeros(DType::F32, {100, m});
                be->matmul(w, x, y);
                outs.emplace_back(y.data_as<float>(), y.data_as<float>() + n_out);
            }
            EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[1].data(), n_out * 4))
                << dtype_name(t) << " m " << m;
            EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[2].data(), n_out * 4))
                << dtype_name(t) << " m " << m;
        }
    }
}

// A few activation rows decoded together (server slots in one step) give each row the
// same bits as that row alone: the decode kernels share unpacking across rows but keep
// every row's operations. K = 800 leaves blocks after the last group of 8.
TEST(Matmul, FewRowsGiveTheBitsOfOneRow) {
    const CpuPath path = cpu_best_path();
    auto be = make_cpu_backend(1, {path});
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL,
                    DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS,
                    DType::F16}) {
        for (int64_t m : {2, 3, 4, 5}) {
            const int64_t k = is_k(t) ? 1024 : 800, n = 21;
            Tensor w = make_weight(t, k, n, 11);
            Tensor x = make_input(k, m, 12);
            Tensor y = Tensor::zeros(DType::F32, {n, m});
            be->matmul(w, x, y);
            for (int64_t c = 0; c < m; ++c) {
                Tensor x1 = Tensor::zeros(DType::F32, {k, 1});
                std::memcpy(x1.data(), x.data_as<float>() + c * k, size_t(k) * 4);
                Tensor y1 = Tensor::zeros(DType::F32, {n, 1});
                be->matmul(w, x1, y1);
                EXPECT_EQ(0, std::memcmp(y1.data(), y.data_as<float>() + c * n, size_t(n) * 4))
                    << dtype_name(t) << " m " << m << " row " << c;
            }
        }
    }
}

// The prompt kernels take weight rows 16 at a time (two 8-row panels) and the last 8 or
// fewer alone. Dropping the first 8 rows moves every row to another place: from the second
// panel of a pair to the first, and from the lone panel into a pair. Each row must keep its
// bits, or a row's result would depend on where its matrix slice starts.
TEST(Matmul, RowBitsDoNotDependOnTheirPlaceInTheTile) {
    const CpuPath path = cpu_best_path();
    auto be = make_cpu_backend(1, {path});
    for (DType t :
         {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL,
          DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS}) {
        const int64_t k = is_k(t) ? 512 : 288, n = 40, m = 37, drop = 8;
        Tensor w = make_weight(t, k, n, 41);
        Tensor w2 = Tensor::zeros(t, {k, n - drop});
        std::memcpy(w2.data(), w.row(drop), size_t(n - drop) * w.row_size());
        Tensor x = make_input(k, m, 42);
        Tensor y = Tensor::zeros(DType::F32, {n, m});
        Tensor y2 = Tensor::zeros(DType::F32, {n - drop, m});
        be->matmul(w, x, y);
        be->matmul(w2, x, y2);
        for (int64_t c = 0; c < m; ++c)
            ASSERT_EQ(0, std::memcmp(y.data_as<float>() + c * n + drop,
                                     y2.data_as<float>() + c * (n - drop), size_t(n - drop) * 4))
                << dtype_name(t) << " activation row " << c;
    }
}

// The AVX-512 path multiplies the AVX2 path's panels: the quantized ones with VNNI (exact
// integer sums, then the same float steps), the f32 ones with one FMA chain per output as
// AVX2 does. A prompt's outputs must then have the AVX2 panels' bits. 40 weight rows are
// two pairs of panels and a lone one; 13 end on a part-filled panel; 37 activation rows end
// on a tile of 1, and the float panels start above 63 rows (AVX-512 takes 12 rows at a
// time, then 8, 4 and the last 1-3: 67 = 5 x 12 + 4 + 3 and 70 = 5 x 12 + 8 + 2; AVX2 takes
// 6); 517 activation rows cross the panels' pass of 512 rows. The float weights have an
// odd K (259): BF16 with pairs of weights takes the bf16 panels instead (Bf16Prompt). (Runs
// where both paths do: a machine with AVX-512, or a build with LCX_EMULATE_AVX512.)
struct Shape {
    int64_t n, m;  // weight rows, activation rows
};

TEST(Matmul, Avx512PanelsGiveTheAvx2PanelsBits) {
    if (!cpu_path_supported(CpuPath::Avx512) || !cpu_path_supported(CpuPath::Avx2))
        GTEST_SKIP() << "needs both the avx2 and the avx512 path";
    auto avx2 = make_cpu_backend(2, {CpuPath::Avx2});
    auto avx512 = make_cpu_backend(2, {CpuPath::Avx512});
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL,
                    DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS,
                    DType::F32, DType::F16, DType::BF16})
        // 61 x 13 stays on one thread (under the split threshold): one call over 8 panels,
        // two pairs at a time, the second two with 13 rows; 590 rows make parts of 2-3
        // row blocks on 2 threads.
        for (Shape sh :
             {Shape{40, 37}, Shape{13, 37}, Shape{13, 517}, Shape{61, 13}, Shape{590, 37}}) {
            const bool is_float = t == DType::F32 || t == DType::F16 || t == DType::BF16;
            const int64_t n = sh.n, m = is_float && sh.m < 64 ? (sh.n == 40 ? 67 : 70) : sh.m;
            const int64_t k = is_k(t) ? 512 : is_float ? 259 : 288;
            Tensor w = make_weight(t, k, n, 51);
            Tensor x = make_input(k, m, 52);
            Tensor y0 = Tensor::zeros(DType::F32, {n, m});
            Tensor y1 = Tensor::zeros(DType::F32, {n, m});
            avx2->matmul(w, x, y0);
            avx512->matmul(w, x, y1);
            for (int64_t i = 0; i < n * m; ++i)
                ASSERT_EQ(y0.data_as<float>()[i], y1.data_as<float>()[i])
                    << dtype_name(t) << " n=" << n << " m=" << m << " output " << i;
        }
}

// ---- packed weight layouts (quant/repack.h) ------------------------------------------

Tensor packed_copy(const Tensor& w, DType packed) {
    Tensor p = Tensor::zeros(packed, {w.ne(0), w.ne(1)});
    pack_rows(packed, w.data(), p.data(), w.ne(1), w.ne(0));
    return p;
}

TEST(PackedMatmul, BackendOffersALayoutOnlyWhereItHasKernels) {
    auto scalar = make_cpu_backend(1, {CpuPath::Scalar});
    EXPECT_EQ(scalar->matmul_layout(DType::Q4_0, 64, 256), DType::Q4_0);
    if (!cpu_path_supported(CpuPath::Avx2)) GTEST_SKIP() << "avx2 not supported here";
    auto avx2 = make_cpu_backend(1, {CpuPath::Avx2});
    EXPECT_EQ(avx2->matmul_layout(DType::Q4_0, 64, 256), DType::Q4_0_R8);
    EXPECT_EQ(avx2->matmul_layout(DType::Q4_0, 60, 256), DType::Q4_0);  // not whole groups
    EXPECT_EQ(avx2->matmul_layout(DType::Q4_K, 64, 256), DType::Q4_K_R8);
    EXPECT_EQ(avx2->matmul_layout(DType::Q5_K, 64, 256), DType::Q5_K_R8);
    EXPECT_EQ(avx2->matmul_layout(DType::Q8_0, 64, 256), DType::Q8_0_R8);
    EXPECT_EQ(avx2->matmul_layout(DType::Q6_K, 64, 256), DType::Q6_K);
    CpuBackendOptions off;
    off.path = CpuPath::Avx2;
    off.repack = false;
    EXPECT_EQ(make_cpu_backend(1, off)->matmul_layout(DType::Q4_0, 64, 256), DType::Q4_0);
    // The AVX-512 path decodes the same packed layouts (with the AVX2 path's kernels) and
    // builds its VNNI panels from them.
    if (!cpu_path_supported(CpuPath::Avx512)) return;
    auto avx512 = make_cpu_backend(1, {CpuPath::Avx512});
    for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q5_K})
        EXPECT_EQ(avx512->matmul_layout(t, 64, 256), avx2->matmul_layout(t, 64, 256))
            << dtype_name(t);
    EXPECT_EQ(avx512->matmul_layout(DType::Q6_K, 64, 256), DType::Q6_K);
    // Float weights stay in the file's layout (zero-copy), bf16 products or not.
    EXPECT_EQ(avx512->matmul_layout(DType::BF16, 64, 256), DType::BF16);
    CpuBackendOptions rounded;
    rounded.path = CpuPath::Avx512;
    rounded.f16_as_bf16 = true;
    EXPECT_EQ(make_cpu_backend(1, rounded)->matmul_layout(DType::F16, 64, 256), DType::F16);
}

// Every path on packed weights against the reference on the same weights in the file
// layout, for the decode kernels (M <= 6) and the panels; the reference itself reads the
// packed layout to the same bits.
// Each packed layout with its file type, and shapes covering M = 1..7 (the decode
// kernel's passes of 3, 2 and 1 rows, and the panels from 7) and the panels' tails.
struct PackedCase {
    DType file, packed;
    std::vector<Case> cases;
};
const PackedCase kPacked[] = {
    {DType::Q4_0,
     DType::Q4_0_R8,
     {{96, 24, 1},
      {800, 40, 1},
      {288, 16, 2},
      {512, 64, 3},
      {256, 8, 4},
      {1024, 32, 5},
      {256, 48, 6},
      {512, 24, 7},
      {256, 40, 14},
      {320, 16, 37}}},
    {DType::Q8_0,
     DType::Q8_0_R8,
     {{96, 24, 1},
      {800, 40, 1},
      {288, 16, 2},
      {512, 64, 3},
      {1024, 32, 5},
      {512, 24, 7},
      {320, 16, 37}}},
    {DType::Q4_K,
     DType::Q4_K_R8,
     {{256, 24, 1},
      {1024, 40, 1},
      {512, 16, 2},
      {768, 32, 3},
      {256, 8, 4},
      {512, 16, 5},
      {256, 48, 6},
      {512, 24, 7},
      {256, 40, 14},
      {768, 16, 37}}},
    {DType::Q5_K,
     DType::Q5_K_R8,
     {{256, 24, 1},
      {1024, 40, 1},
      {512, 16, 2},
      {768, 32, 3},
      {512, 16, 5},
      {512, 24, 7},
      {256, 40, 14},
      {768, 16, 37}}},
};

TEST(PackedMatmul, MatchesReferenceOnTheFileLayout) {
    auto ref = make_cpu_backend(1, {CpuPath::Scalar});
    for (CpuPath path : {CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        auto fast = make_cpu_backend(2, {path});
        for (const PackedCase& pc : kPacked)
            for (const Case& c : pc.cases) {
                Tensor w = make_weight(pc.file, c.k, c.n, 21);
                Tensor wp = packed_copy(w, pc.packed);
                Tensor x = make_input(c.k, c.m, 22);
                Tensor y0 = Tensor::zeros(DType::F32, {c.n, c.m});
                Tensor y1 = Tensor::zeros(DType::F32, {c.n, c.m});
                Tensor y2 = Tensor::zeros(DType::F32, {c.n, c.m});
                ref->matmul(w, x, y0);
                ref->matmul(wp, x, y2);
                fast->matmul(wp, x, y1);
                ASSERT_EQ(0, std::memcmp(y0.data(), y2.data(), size_t(c.n * c.m) * 4))
                    << "reference on " << dtype_name(pc.packed) << ", k=" << c.k << " m=" << c.m;
                std::vector<float> wr(static_cast<size_t>(c.k));
                for (int64_t mi = 0; mi < c.m; ++mi) {
                    auto xs = act_as_seen(pc.file, x.data_as<float>() + mi * c.k, c.k);
                    for (int64_t ni = 0; ni < c.n; ++ni) {
                        dequantize_row(pc.file, w.row(ni), wr.data(), c.k);
                        const double tol = 2e-5 * abs_dot(wr, xs) + 1e-5;
                        ASSERT_NEAR(y1.data_as<float>()[mi * c.n + ni],
                                    y0.data_as<float>()[mi * c.n + ni], tol)
                            << cpu_path_name(path) << " " << dtype_name(pc.packed) << " k=" << c.k
                            << " n=" << ni << " m=" << mi;
                    }
                }
            }
    }
}

// On packed weights the decode kernel and the panels do the same operations per block in
// the same order: a row's bits do not depend on how many tokens the pass has.
// On the AVX-512 path the prompt's VNNI panels sum the same integers exactly, so it holds
// there too.
TEST(PackedMatmul, DecodeAndPromptGiveTheSameBits) {
    if (!cpu_path_supported(CpuPath::Avx2)) GTEST_SKIP() << "avx2 not supported here";
    for (CpuPath path : {CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        for (const PackedCase& pc : kPacked) {
            const int64_t k = is_k(pc.file) ? 1024 : 800, n = 40, m = 37;
            Tensor wp = packed_copy(make_weight(pc.file, k, n, 31), pc.packed);
            Tensor x = make_input(k, m, 32);
            for (int nt : {1, 2, 3}) {
                auto be = make_cpu_backend(nt, {path});
                Tensor y = Tensor::zeros(DType::F32, {n, m});
                be->matmul(wp, x, y);
                for (int64_t c : {0, 5, 36}) {
                    for (int64_t rows : {1, 4}) {
                        if (c + rows > m) continue;
                        Tensor xc = Tensor::zeros(DType::F32, {k, rows});
                        std::memcpy(xc.data(), x.data_as<float>() + c * k, size_t(k * rows) * 4);
                        Tensor yc = Tensor::zeros(DType::F32, {n, rows});
                        be->matmul(wp, xc, yc);
                        EXPECT_EQ(0, std::memcmp(yc.data(), y.data_as<float>() + c * n,
                                                 size_t(n * rows) * 4))
                            << cpu_path_name(path) << " " << dtype_name(pc.packed) << " threads "
                            << nt << " rows " << c << ".." << c + rows - 1;
                    }
                }
            }
        }
    }
}

// The packed layouts' prompt panels, built from the packed rows, give the AVX2 tiles' bits
// on the AVX-512 path too, with the tile shapes of the test above (rows in whole groups:
// 56 and 592 where that test has 61 and 590).
TEST(PackedMatmul, Avx512PanelsGiveTheAvx2PanelsBits) {
    if (!cpu_path_supported(CpuPath::Avx512) || !cpu_path_supported(CpuPath::Avx2))
        GTEST_SKIP() << "needs both the avx2 and the avx512 path";
    auto avx2 = make_cpu_backend(2, {CpuPath::Avx2});
    auto avx512 = make_cpu_backend(2, {CpuPath::Avx512});
    for (const PackedCase& pc : kPacked)
        for (Shape sh : {Shape{40, 37}, Shape{40, 517}, Shape{56, 13}, Shape{592, 37}}) {
            const int64_t k = is_k(pc.file) ? 512 : 288, n = sh.n, m = sh.m;
            Tensor w = packed_copy(make_weight(pc.file, k, n, 53), pc.packed);
            Tensor x = make_input(k, m, 54);
            Tensor y0 = Tensor::zeros(DType::F32, {n, m});
            Tensor y1 = Tensor::zeros(DType::F32, {n, m});
            avx2->matmul(w, x, y0);
            avx512->matmul(w, x, y1);
            ASSERT_EQ(0, std::memcmp(y0.data(), y1.data(), size_t(n * m) * 4))
                << dtype_name(pc.packed) << " n=" << n << " m=" << m;
        }
}

// matmul_many splits the rows of all its tasks between threads; a task with a row count
// that is not a multiple of 16 ahead of a packed one must not shift the packed task's
// parts off its groups.
TEST(PackedMatmul, ManyWithUnalignedNeighboursEqualsSeparateProducts) {
    const CpuPath path = cpu_best_path();
    auto be = make_cpu_backend(2, {path});
    const int64_t k = 512;
    Tensor w0 = make_weight(DType::Q4_0, k, 21, 41);
    Tensor w1 = packed_copy(make_weight(DType::Q4_0, k, 200, 42), DType::Q4_0_R8);
    Tensor w2 = make_weight(DType::Q4_0, k, 13, 43);
    Tensor w3 = packed_copy(make_weight(DType::Q4_0, k, 72, 44), DType::Q4_0_R8);
    Tensor w4 = make_weight(DType::Q4_K, k, 5, 46);
    Tensor w5 = packed_copy(make_weight(DType::Q4_K, k, 88, 47), DType::Q4_K_R8);
    for (int64_t m : {1, 9}) {
        Tensor x = make_input(k, m, 45);
        const Tensor* ws[] = {&w0, &w1, &w2, &w3, &w4, &w5};
        std::vector<Tensor> together, alone;
        std::vector<MatmulTask> tasks;
        for (const Tensor* w : ws) {
            together.push_back(Tensor::zeros(DType::F32, {w->ne(1), m}));
            alone.push_back(Tensor::zeros(DType::F32, {w->ne(1), m}));
        }
        for (size_t i = 0; i < 6; ++i) tasks.push_back({ws[i], &together[i]});
        be->matmul_many(x, tasks);
        for (size_t i = 0; i < 6; ++i) {
            be->matmul(*ws[i], x, alone[i]);
            EXPECT_EQ(
                0, std::memcmp(together[i].data(), alone[i].data(), size_t(ws[i]->ne(1) * m) * 4))
                << "task " << i << " m " << m;
        }
    }
}

TEST(PackedMatmul, KernelRejectsRangesOffTheGroups) {
    if (!cpu_path_supported(CpuPath::Avx2)) GTEST_SKIP() << "avx2 not supported here";
    const int64_t k = 256, n = 32;
    Tensor wp = packed_copy(make_weight(DType::Q4_0, k, n, 51), DType::Q4_0_R8);
    Tensor x = make_input(k, 1, 52);
    cpu::ActRows a;
    cpu::act_resize(a, cpu::ActKind::Q8_0, k, 1);
    cpu::act_convert(a, x.data_as<float>(), size_t(k), 0, 1);
    std::vector<float> y(static_cast<size_t>(n));
    const cpu::MatmulFn fn = cpu::kernels_avx2().get(DType::Q4_0_R8);
    ASSERT_NE(fn, nullptr);
    EXPECT_THROW(fn(wp, 4, 16, a, y.data(), size_t(n)), Error);
    EXPECT_NO_THROW(fn(wp, 8, 16, a, y.data(), size_t(n)));
}

// Packed weights still convert to floats (dequantize, get_rows) as their file rows do.
TEST(PackedMatmul, DequantizeAndGetRowsReadThePackedLayout) {
    auto be = make_cpu_backend(2);
    for (const PackedCase& pc : kPacked) {
        const int64_t k = 256, n = 24;
        Tensor w = make_weight(pc.file, k, n, 61);
        Tensor wp = packed_copy(w, pc.packed);
        Tensor a = Tensor::zeros(DType::F32, {k, n}), b = Tensor::zeros(DType::F32, {k, n});
        be->dequantize(w, a);
        be->dequantize(wp, b);
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), size_t(k * n) * 4));
        const std::vector<int32_t> ids{23, 0, 9, 9};
        Tensor ra = Tensor::zeros(DType::F32, {k, 4}), rb = Tensor::zeros(DType::F32, {k, 4});
        be->get_rows(w, ids, ra);
        be->get_rows(wp, ids, rb);
        EXPECT_EQ(0, std::memcmp(ra.data(), rb.data(), size_t(k * 4) * 4));
    }
}

// ---- prompts in bf16: BF16 weights, and F16 weights with f16_as_bf16 --------------------

// F16 weights rounded to the nearest bf16, as the AVX-512 path's panels round them.
Tensor rounded_to_bf16(const Tensor& f16) {
    Tensor out = Tensor::zeros(DType::BF16, {f16.ne(0), f16.ne(1)});
    const auto* in = static_cast<const uint16_t*>(f16.data());
    auto* o = static_cast<uint16_t*>(out.data());
    for (int64_t i = 0; i < f16.n_elements(); ++i) o[i] = fp32_to_bf16(fp16_to_fp32(in[i]));
    return out;
}

std::unique_ptr<Backend> f16_as_bf16_backend(int n_threads, CpuPath path) {
    CpuBackendOptions o;
    o.path = path;
    o.f16_as_bf16 = true;
    return make_cpu_backend(n_threads, o);
}

// Whether a backend multiplies prompts of F16 weights in bf16 (it says so in its name).
bool rounds_f16(const Backend& be) { return be.name().find("f16-as-bf16") != std::string::npos; }

// Shapes of prompts (from 64 activation rows: tiles of 12, 8, 4 and 1-3 rows) over panels
// of 16 weight rows (pairs of panels, a lone one, part-filled ones) with K's pairs ending
// anywhere in a panel's step of 16 pairs.
const Case kBf16Prompts[] = {{2, 16, 64},    {34, 37, 70},  {66, 48, 77},
                             {258, 21, 129}, {512, 80, 64}, {1030, 13, 67}};

// Every path against the reference: BF16 weights as they are; F16 weights, where the path
// has bf16 products and the backend is asked to use them, as the reference multiplies
// their bf16 rounding by bf16 activations; elsewhere (decode, other paths) exactly as F16.
TEST(Bf16Prompt, MatchesReference) {
    auto ref = make_cpu_backend(1, {CpuPath::Scalar});
    for (CpuPath path : {CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        auto plain = make_cpu_backend(2, {path});
        auto rounding = f16_as_bf16_backend(2, path);
        EXPECT_EQ(rounds_f16(*rounding), path == CpuPath::Avx512) << cpu_path_name(path);
        for (DType t : {DType::BF16, DType::F16})
            for (const Case& c : kBf16Prompts)
                for (int64_t m : {c.m, int64_t(5)}) {
                    const Tensor w = make_weight(t, c.k, c.n, 81);
                    const Tensor x = make_input(c.k, m, 82);
                    const bool rounded = t == DType::F16 && rounds_f16(*rounding) && m >= 64;
                    const Tensor wr = rounded ? rounded_to_bf16(w) : make_weight(t, 1, 1, 0);
                    const Tensor& seen = rounded ? wr : w;
                    Tensor y0 = Tensor::zeros(DType::F32, {c.n, m});
                    Tensor y1 = Tensor::zeros(DType::F32, {c.n, m});
                    ref->matmul(seen, x, y0);
                    rounding->matmul(w, x, y1);
                    const std::string what =
                        std::string(cpu_path_name(path)) + " " + std::string(dtype_name(t)) +
                        " k=" + std::to_string(c.k) + " m=" + std::to_string(m);
                    if (t == DType::F16 && !rounded) {  // the flag changes nothing here
                        Tensor y2 = Tensor::zeros(DType::F32, {c.n, m});
                        plain->matmul(w, x, y2);
                        ASSERT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.n_bytes())) << what;
                    }
                    std::vector<float> row(static_cast<size_t>(c.k));
                    for (int64_t mi = 0; mi < m; ++mi) {
                        auto xs = act_as_seen(seen.type(), x.data_as<float>() + mi * c.k, c.k);
                        for (int64_t ni = 0; ni < c.n; ++ni) {
                            dequantize_row(seen.type(), seen.row(ni), row.data(), c.k);
                            const double tol = 2e-5 * abs_dot(row, xs) + 1e-5;
                            ASSERT_NEAR(y1.data_as<float>()[mi * c.n + ni],
                                        y0.data_as<float>()[mi * c.n + ni], tol)
                                << what << " n=" << ni << " row " << mi;
                        }
                    }
                }
    }
}

// The panels hold the weights exactly where the kernel reads them: against one-hot
// activation rows, output (c, n) is weight (n, c) itself, for random BF16 bits and for
// every finite f16 value rounded to bf16 (subnormals included), whose rounding must be
// fp32_to_bf16's.
TEST(Bf16Prompt, PanelsHoldEveryWeightInPlace) {
    if (!cpu_path_supported(CpuPath::Avx512)) GTEST_SKIP() << "avx512 not supported here";
    auto be = f16_as_bf16_backend(2, CpuPath::Avx512);
    ASSERT_TRUE(rounds_f16(*be));
    const int64_t k = 64, n = 1024, m = 64;
    Tensor x = Tensor::zeros(DType::F32, {k, m});
    for (int64_t c = 0; c < m; ++c) x.data_as<float>()[c * k + c] = 1.0f;
    std::mt19937 rng(86);
    for (DType t : {DType::F16, DType::BF16}) {
        Tensor w = Tensor::zeros(t, {k, n});
        auto* bits = static_cast<uint16_t*>(w.data());
        for (int64_t i = 0; i < k * n; ++i) {
            bits[i] = t == DType::F16 ? uint16_t(i) : uint16_t(rng());
            const float v = t == DType::F16 ? fp16_to_fp32(bits[i]) : bf16_to_fp32(bits[i]);
            // Infinities and NaNs would spread through the zero products, and vdpbf16ps reads
            // bf16 denormals as zero (f16 values never round to one).
            if (!std::isfinite(v) || (v != 0.0f && std::fabs(v) < FLT_MIN)) bits[i] = 0;
        }
        Tensor y = Tensor::zeros(DType::F32, {n, m});
        be->matmul(w, x, y);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t c = 0; c < m; ++c) {
                const uint16_t h = bits[r * k + c];
                const float want =
                    bf16_to_fp32(t == DType::F16 ? fp32_to_bf16(fp16_to_fp32(h)) : h);
                ASSERT_EQ(y.data_as<float>()[c * n + r], want)
                    << dtype_name(t) << " weight " << r << ", " << c << " (0x" << std::hex << h
                    << ")";
            }
    }
}

// A row's bits do not depend on the thread count or on where its panel starts (8 rows
// dropped from the front move every row to another lane and panel).
TEST(Bf16Prompt, RowBitsDoNotDependOnThreadsOrPlace) {
    const CpuPath path = cpu_best_path();
    const int64_t k = 260, n = 80, m = 70, drop = 8;
    auto one = f16_as_bf16_backend(1, path);
    for (DType t : {DType::BF16, DType::F16}) {
        const Tensor w = make_weight(t, k, n, 83);
        Tensor tail = Tensor::zeros(t, {k, n - drop});
        std::memcpy(tail.data(), w.row(drop), size_t(n - drop) * w.row_size());
        const Tensor x = make_input(k, m, 84);
        Tensor y = Tensor::zeros(DType::F32, {n, m});
        one->matmul(w, x, y);
        for (int nt : {2, 3}) {
            Tensor yt = Tensor::zeros(DType::F32, {n, m});
            f16_as_bf16_backend(nt, path)->matmul(w, x, yt);
            EXPECT_EQ(0, std::memcmp(y.data(), yt.data(), y.n_bytes()))
                << dtype_name(t) << ", " << nt << " threads";
        }
        Tensor y2 = Tensor::zeros(DType::F32, {n - drop, m});
        one->matmul(tail, x, y2);
        for (int64_t c = 0; c < m; ++c)
            ASSERT_EQ(0, std::memcmp(y.data_as<float>() + c * n + drop,
                                     y2.data_as<float>() + c * (n - drop), size_t(n - drop) * 4))
                << dtype_name(t) << " activation row " << c;
    }
}

// The panels read no byte past a weight's last row, whose tail (K = 34: one pair of 16,
// then one more) is loaded with a mask: the weight ends where an unreadable page begins.
TEST(Bf16Prompt, ReadsNothingPastTheLastRow) {
    const int64_t k = 34, n = 48, m = 64;
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), bytes = size_t(k * n) * 2;
    const size_t span = (bytes + page - 1) / page * page;
    void* map =
        mmap(nullptr, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(map, MAP_FAILED);
    ASSERT_EQ(0, mprotect(static_cast<char*>(map) + span, page, PROT_NONE));
    auto* at = static_cast<char*>(map) + span - bytes;
    for (DType t : {DType::BF16, DType::F16}) {
        const Tensor src = make_weight(t, k, n, 87);
        std::memcpy(at, src.data(), bytes);
        const std::vector<int64_t> shape{k, n};
        const Tensor w = Tensor::borrow(t, shape, at);
        const Tensor x = make_input(k, m, 88);
        Tensor y0 = Tensor::zeros(DType::F32, {n, m}), y1 = Tensor::zeros(DType::F32, {n, m});
        f16_as_bf16_backend(2, cpu_best_path())->matmul(w, x, y1);
        f16_as_bf16_backend(2, cpu_best_path())->matmul(src, x, y0);
        EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), y0.n_bytes())) << dtype_name(t);
    }
    munmap(map, span + page);
}

// Every part of every job runs exactly once, whichever thread claims it, over many
// back-to-back jobs (workers that wake late must not run a stale or finished job).
TEST(ThreadPool, EachPartRunsExactlyOnce) {
    for (int nt : {1, 2, 3, 4}) {
        ThreadPool pool(nt);
        for (int round = 0; round < 2000; ++round) {
            const int n_parts = 1 + round % 37;
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n_parts));
            pool.run_parts(n_parts, [&](int p) { hits[size_t(p)].fetch_add(1); });
            for (int p = 0; p < n_parts; ++p)
                ASSERT_EQ(1, hits[size_t(p)].load()) << nt << " " << p;
            std::vector<std::atomic<int>> idx(static_cast<size_t>(nt));
            pool.run([&](int i, int n) {
                ASSERT_EQ(nt, n);
                idx[size_t(i)].fetch_add(1);
            });
            for (int i = 0; i < nt; ++i) ASSERT_EQ(1, idx[size_t(i)].load()) << nt << " " << i;
        }
    }
}

TEST(Matmul, ManyEqualsSeparateProducts) {
    auto be = make_cpu_backend(2);
    Tensor x = make_input(256, 4, 7);
    Tensor wq = make_weight(DType::Q4_K, 256, 40, 8);
    Tensor wk = make_weight(DType::Q8_0, 256, 24, 9);
    Tensor wv = make_weight(DType::Q4_K, 256, 24, 10);
    Tensor a[3] = {Tensor::zeros(DType::F32, {40, 4}), Tensor::zeros(DType::F32, {24, 4}),
                   Tensor::zeros(DType::F32, {24, 4})};
    Tensor b[3] = {Tensor::zeros(DType::F32, {40, 4}), Tensor::zeros(DType::F32, {24, 4}),
                   Tensor::zeros(DType::F32, {24, 4})};
    const Tensor* ws[3] = {&wq, &wk, &wv};
    MatmulTask tasks[3];
    for (int i = 0; i < 3; ++i) {
        be->matmul(*ws[i], x, a[i]);
        tasks[i] = {ws[i], &b[i]};
    }
    be->matmul_many(x, tasks);
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].n_bytes())) << i;
}

// matmul_glu gives the bits of the two products followed by the elementwise activation,
// on every path, for decode (the unfused order) and prompts (fused per part of hidden
// units, with tails); fused, it never writes the up scratch.
TEST(Matmul, GluEqualsProductsThenActivation) {
    const int64_t k = 512;
    struct Weights {
        DType file, layout;
    };
    const Weights kinds[] = {{DType::F16, DType::F16},      {DType::Q4_0, DType::Q4_0},
                             {DType::Q8_0, DType::Q8_0},    {DType::Q4_K, DType::Q4_K},
                             {DType::Q6_K, DType::Q6_K},    {DType::Q4_0, DType::Q4_0_R8},
                             {DType::Q4_K, DType::Q4_K_R8}, {DType::Q5_K, DType::Q5_K_R8}};
    for (CpuPath path : {CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        auto be = make_cpu_backend(2, {path});
        for (const Weights& wt : kinds)
            for (int64_t n_ff : {int64_t(200), int64_t(136)}) {
                Tensor wg = make_weight(wt.file, k, n_ff, 71),
                       wu = make_weight(wt.file, k, n_ff, 72);
                if (wt.layout != wt.file) {
                    wg = packed_copy(wg, wt.layout);
                    wu = packed_copy(wu, wt.layout);
                }
                for (int64_t m : {1, 16, 37})
                    for (Glu act : {Glu::Silu, Glu::Gelu}) {
                        Tensor x = make_input(k, m, 73);
                        Tensor g = Tensor::zeros(DType::F32, {n_ff, m});
                        Tensor u = Tensor::zeros(DType::F32, {n_ff, m});
                        be->matmul(wg, x, g);
                        be->matmul(wu, x, u);
                        if (act == Glu::Silu)
                            be->swiglu(g, u, g);
                        else
                            be->geglu(g, u, g);
                        Tensor h = Tensor::zeros(DType::F32, {n_ff, m});
                        Tensor scratch = Tensor::zeros(DType::F32, {n_ff, m});
                        const std::vector<float> nan(size_t(n_ff * m), std::nanf(""));
                        std::memcpy(scratch.data(), nan.data(), scratch.n_bytes());
                        be->matmul_glu(x, wg, wu, act, h, scratch);
                        const std::string what = std::string(dtype_name(wt.layout)) + " n_ff " +
                                                 std::to_string(n_ff) + " m " + std::to_string(m) +
                                                 (act == Glu::Silu ? " silu" : " gelu");
                        ASSERT_EQ(0, std::memcmp(g.data(), h.data(), g.n_bytes())) << what;
                        if (m >= 16 && path != CpuPath::Scalar) {
                            EXPECT_EQ(0, std::memcmp(scratch.data(), nan.data(), scratch.n_bytes()))
                                << what << ": the up scratch was written";
                        }
                    }
            }
    }
}

TEST(Matmul, ShapeAndTypeErrorsThrow) {
    auto be = make_cpu_backend(1);
    Tensor w = make_weight(DType::Q4_0, 64, 8, 1);
    Tensor x = make_input(32, 2, 1);
    Tensor y = Tensor::zeros(DType::F32, {8, 2});
    EXPECT_THROW(be->matmul(w, x, y), Error);  // K mismatch
    Tensor x2 = make_input(64, 2, 1);
    Tensor ybad = Tensor::zeros(DType::F32, {7, 2});
    EXPECT_THROW(be->matmul(w, x2, ybad), Error);
    Tensor yf16 = Tensor::zeros(DType::F16, {8, 2});
    EXPECT_THROW(be->matmul(w, x2, yf16), Error);
    try {
        be->matmul(w, x, y);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("Q4_0[64,8]"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace lcx
