// Row ops, conversions and fused attention against direct double-precision definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "common/fp16.h"
#include "quant/quant.h"

namespace lcx {
namespace {

Tensor rand_tensor(std::initializer_list<int64_t> shape, uint32_t seed, float scale = 1.0f) {
    Tensor t = Tensor::zeros(DType::F32, shape);
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    for (int64_t i = 0; i < t.n_elements(); ++i) t.data_as<float>()[i] = d(rng);
    return t;
}

// Elementwise ops are single float expressions; 1e-6 relative covers exp/tanh ulps.
TEST(Ops, ElementwiseAndBroadcast) {
    auto be = make_cpu_backend(2);
    Tensor a = rand_tensor({37, 5}, 1), b = rand_tensor({37}, 2),
           out = Tensor::zeros(DType::F32, {37, 5});
    be->add(a, b, out);
    for (int64_t i = 0; i < 37 * 5; ++i)
        EXPECT_FLOAT_EQ(out.data_as<float>()[i],
                        a.data_as<float>()[i] + b.data_as<float>()[i % 37]);
    be->mul(a, b, out);
    for (int64_t i = 0; i < 37 * 5; ++i)
        EXPECT_FLOAT_EQ(out.data_as<float>()[i],
                        a.data_as<float>()[i] * b.data_as<float>()[i % 37]);
    Tensor g = rand_tensor({37, 5}, 3);
    be->swiglu(g, a, out);
    for (int64_t i = 0; i < 37 * 5; ++i) {
        const double x = g.data_as<float>()[i];
        EXPECT_NEAR(out.data_as<float>()[i], x / (1 + std::exp(-x)) * a.data_as<float>()[i], 1e-5);
    }
    be->gelu(g, out);
    for (int64_t i = 0; i < 37 * 5; ++i) {
        const double x = g.data_as<float>()[i];
        const double want =
            0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        EXPECT_NEAR(out.data_as<float>()[i], want, 1e-5);
    }
    Tensor wrong = rand_tensor({36}, 4);
    EXPECT_THROW(be->add(a, wrong, out), Error);
}

// SwiGLU over the whole useful range of the gate (both signs, where e^-g over- or
// underflows, exact zero) on every path, against the double-precision definition.
TEST(Ops, SwigluOverTheGateRange) {
    const int64_t n = 1003;  // not a multiple of 8: the vector tail too
    Tensor g = Tensor::zeros(DType::F32, {n}), u = Tensor::zeros(DType::F32, {n});
    for (int64_t i = 0; i < n; ++i) {
        g.data_as<float>()[i] = float(-100.0 + 200.0 * double(i) / double(n - 1));
        u.data_as<float>()[i] = i % 3 ? 1.5f : -0.75f;
    }
    g.data_as<float>()[n / 2] = 0.0f;
    for (CpuPath path : {CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512}) {
        if (!cpu_path_supported(path)) continue;
        auto be = make_cpu_backend(2, {path});
        Tensor out = Tensor::zeros(DType::F32, {n});
        be->swiglu(g, u, out);
        for (int64_t i = 0; i < n; ++i) {
            const double x = g.data_as<float>()[i];
            const double want = x / (1 + std::exp(-x)) * u.data_as<float>()[i];
            EXPECT_NEAR(out.data_as<float>()[i], want, 4e-7 * std::fabs(want) + 1e-30)
                << cpu_path_name(path) << " g=" << x;
        }
    }
}

TEST(Ops, NormsAndSoftmax) {
    auto be = make_cpu_backend(2);
    Tensor x = rand_tensor({67, 6}, 5, 3.0f), out = Tensor::zeros(DType::F32, {67, 6});
    be->rms_norm(x, 1e-5f, out);
    for (int r = 0; r < 6; ++r) {
        const float* xr = x.data_as<float>() + r * 67;
        double ss = 0;
        for (int j = 0; j < 67; ++j) ss += double(xr[j]) * xr[j];
        const double s = 1 / std::sqrt(ss / 67 + 1e-5);
        for (int j = 0; j < 67; ++j) EXPECT_NEAR(out.data_as<float>()[r * 67 + j], xr[j] * s, 1e-5);
    }
    Tensor w = rand_tensor({67}, 6), bias = rand_tensor({67}, 7);
    be->layer_norm(x, 1e-5f, &w, &bias, out);
    for (int r = 0; r < 6; ++r) {
        const float* xr = x.data_as<float>() + r * 67;
        double m = 0, v = 0;
        for (int j = 0; j < 67; ++j) m += xr[j];
        m /= 67;
        for (int j = 0; j < 67; ++j) v += (xr[j] - m) * (xr[j] - m);
        const double s = 1 / std::sqrt(v / 67 + 1e-5);
        for (int j = 0; j < 67; ++j)
            EXPECT_NEAR(out.data_as<float>()[r * 67 + j],
                        (xr[j] - m) * s * w.data_as<float>()[j] + bias.data_as<float>()[j], 1e-4);
    }
    // Causal softmax over [8 columns, 3 rows]: row i sees columns <= i + 5.
    Tensor l = rand_tensor({8, 3}, 8), p = Tensor::zeros(DType::F32, {8, 3});
    be->softmax(l, p, 0.5f, true);
    for (int r = 0; r < 3; ++r) {
        double z = 0, mx = -1e30;
        for (int j = 0; j <= r + 5; ++j) mx = std::max(mx, 0.5 * l.data_as<float>()[r * 8 + j]);
        for (int j = 0; j <= r + 5; ++j) z += std::exp(0.5 * l.data_as<float>()[r * 8 + j] - mx);
        for (int j = 0; j < 8; ++j) {
            const double want =
                j <= r + 5 ? std::exp(0.5 * l.data_as<float>()[r * 8 + j] - mx) / z : 0;
            EXPECT_NEAR(p.data_as<float>()[r * 8 + j], want, 1e-6);
        }
    }
}

// RoPE against the closed form theta_i = pos * base^(-2i/n_rot); ggml (and we) build the
// angles by repeated float multiplication, which drifts by a few ulps of the angle:
// 1e-4 absolute on unit-scale values at positions below 100.
TEST(Ops, RopeBothModes) {
    auto be = make_cpu_backend(1);
    const int hd = 16, nh = 3, nt = 4, n_rot = 12;
    Tensor x = rand_tensor({hd, nh, nt}, 9), out = Tensor::zeros(DType::F32, {hd, nh, nt});
    const std::vector<int32_t> pos = {0, 5, 17, 63};
    for (RopeMode mode : {RopeMode::Normal, RopeMode::NeoX}) {
        RopeParams p;
        p.n_rot = n_rot;
        p.mode = mode;
        p.freq_base = 10000.0f;
        p.freq_scale = 0.5f;
        be->rope(x, pos, p, out);
        for (int t = 0; t < nt; ++t)
            for (int h = 0; h < nh; ++h) {
                const float* xr = x.data_as<float>() + (t * nh + h) * hd;
                const float* yr = out.data_as<float>() + (t * nh + h) * hd;
                for (int i = 0; i < n_rot / 2; ++i) {
                    const double th = pos[size_t(t)] * 0.5 * std::pow(10000.0, -2.0 * i / n_rot);
                    const int a = mode == RopeMode::Normal ? 2 * i : i;
                    const int b = mode == RopeMode::Normal ? 2 * i + 1 : i + n_rot / 2;
                    EXPECT_NEAR(yr[a], xr[a] * std::cos(th) - xr[b] * std::sin(th), 1e-4);
                    EXPECT_NEAR(yr[b], xr[a] * std::sin(th) + xr[b] * std::cos(th), 1e-4);
                }
                for (int i = n_rot; i < hd; ++i) EXPECT_EQ(yr[i], xr[i]);
            }
    }
    RopeParams bad;
    bad.n_rot = 18;
    EXPECT_THROW(be->rope(x, pos, bad, out), Error);
}

TEST(Ops, GetRowsCopyAndStoreRows) {
    auto be = make_cpu_backend(1);
    Tensor src = rand_tensor({64, 10}, 10);
    Tensor q = Tensor::zeros(DType::Q8_0, {64, 10});
    quantize_rows(DType::Q8_0, src.data_as<float>(), q.data(), 10, 64);
    Tensor rows = Tensor::zeros(DType::F32, {64, 3});
    const std::vector<int32_t> ids = {7, 0, 7};
    be->get_rows(q, ids, rows);
    std::vector<float> want(64);
    dequantize_row(DType::Q8_0, q.row(7), want.data(), 64);
    EXPECT_EQ(0, std::memcmp(rows.data_as<float>(), want.data(), 256));
    EXPECT_EQ(0, std::memcmp(rows.data_as<float>() + 128, want.data(), 256));
    EXPECT_THROW(be->get_rows(q, std::vector<int32_t>{10}, rows), Error);

    // KV append: two rows into rows 4..5 of an F16 cache, bit-exact f16 rounding.
    Tensor cache = Tensor::zeros(DType::F16, {64, 8});
    be->store_rows(src.rows(0, 2), cache, 4);
    for (int j = 0; j < 128; ++j)
        EXPECT_EQ(reinterpret_cast<const uint16_t*>(cache.row(4))[j],
                  fp32_to_fp16(src.data_as<float>()[j]));
    EXPECT_EQ(reinterpret_cast<const uint16_t*>(cache.row(3))[0], 0);
    EXPECT_THROW(be->store_rows(src.rows(0, 2), cache, 7), Error);

    // Strided views on both sides, as the model stores one head's rows into a head-major
    // cache: rows 1, 3, 5 of src (every other) into cells 2..4 of head 1 of a
    // [64, 6 cells, 2 heads] cache.
    Tensor hm = Tensor::zeros(DType::F16, {64, 6, 2});
    const Tensor every_other = src.view({64, 3}, {2 * src.nb(1)}, src.nb(1));
    Tensor cells = hm.view({64, 3}, {hm.nb(1)}, hm.nb(2) + 2 * hm.nb(1));
    be->store_rows(every_other, cells, 0);
    for (int64_t c = 0; c < 6; ++c)
        for (int64_t h = 0; h < 2; ++h) {
            const bool stored = h == 1 && c >= 2 && c < 5;
            const float* want_row = src.data_as<float>() + (stored ? 2 * (c - 2) + 1 : 0) * 64;
            for (int j = 0; j < 64; ++j)
                ASSERT_EQ(reinterpret_cast<const uint16_t*>(hm.row(c, h))[j],
                          stored ? fp32_to_fp16(want_row[j]) : 0)
                    << "cell " << c << " head " << h;
        }
    // And back: the strided F16 rows to a contiguous F32 tensor.
    Tensor back = Tensor::zeros(DType::F32, {64, 3});
    be->copy(cells, back);
    for (int64_t r = 0; r < 3; ++r)
        for (int j = 0; j < 64; ++j)
            ASSERT_EQ(back.data_as<float>()[r * 64 + j],
                      fp16_to_fp32(fp32_to_fp16(src.data_as<float>()[(2 * r + 1) * 64 + j])));
    // A view must lie inside its tensor.
    EXPECT_THROW((void)hm.view({64, 3}, {hm.nb(1)}, hm.nb(2) + 4 * hm.nb(1)), Error);
    EXPECT_THROW((void)src.view({64, 6}, {2 * src.nb(1)}, 0), Error);
    EXPECT_NO_THROW((void)src.view({64, 5}, {2 * src.nb(1)}, 0));
}

// Attention against a double-precision reference that rounds Q, K, V and the probabilities
// the way an f16 cache does (ggml's f16 K·Q and V·P products).
void naive_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                     const std::vector<int32_t>& pos, const AttentionParams& p,
                     std::vector<double>& out) {
    const int64_t hd = q.ne(0), nh = q.ne(1), nt = q.ne(2), nkv = k.ne(1);
    const bool f16 = k.type() == DType::F16;
    auto kv = [&](const Tensor& c, int64_t h, int64_t cell, int64_t j) {
        return f16 ? double(fp16_to_fp32(reinterpret_cast<const uint16_t*>(c.row(h, cell))[j]))
                   : double(reinterpret_cast<const float*>(c.row(h, cell))[j]);
    };
    auto r16 = [&](double x) { return f16 ? double(fp16_to_fp32(fp32_to_fp16(float(x)))) : x; };
    out.assign(size_t(hd * nh * nt), 0);
    for (int64_t t = 0; t < nt; ++t)
        for (int64_t h = 0; h < nh; ++h) {
            const int64_t hk = h / (nh / nkv);
            std::vector<double> l(size_t(p.n_kv), -INFINITY);
            double mx = -INFINITY;
            for (int64_t c = 0; c < p.n_kv; ++c) {
                if (p.causal && c > pos[size_t(t)]) continue;
                if (p.sliding_window > 0 && pos[size_t(t)] - c >= p.sliding_window) continue;
                double s = 0;
                for (int64_t j = 0; j < hd; ++j)
                    s += r16(q.data_as<float>()[(t * nh + h) * hd + j]) * kv(k, hk, c, j);
                s *= p.scale;
                if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
                l[size_t(c)] = s;
                mx = std::max(mx, s);
            }
            double z = 0;
            for (auto& e : l) z += (e = std::exp(e - mx));
            for (int64_t c = 0; c < p.n_kv; ++c)
                for (int64_t j = 0; j < hd; ++j)
                    out[size_t((t * nh + h) * hd + j)] += r16(l[size_t(c)] / z) * kv(v, hk, c, j);
        }
}

TEST(Ops, AttentionMatchesNaive) {
    auto be = make_cpu_backend(2);
    const int64_t hd = 32, nh = 4, nkvh = 2, nctx = 24, nt = 3;
    Tensor q = rand_tensor({hd, nh, nt}, 11);
    Tensor kf = rand_tensor({hd, nkvh, nctx}, 12), vf = rand_tensor({hd, nkvh, nctx}, 13);
    const std::vector<int32_t> pos = {17, 18, 19};
    for (DType ct : {DType::F32, DType::F16}) {
        Tensor k = Tensor::zeros(ct, {hd, nkvh, nctx}), v = Tensor::zeros(ct, {hd, nkvh, nctx});
        be->store_rows(kf.reshape({hd, nkvh * nctx}), k, 0);
        be->store_rows(vf.reshape({hd, nkvh * nctx}), v, 0);
        for (int variant = 0; variant < 3; ++variant) {
            AttentionParams p;
            p.scale = 1 / std::sqrt(float(hd));
            p.n_kv = 20;
            if (variant == 1) p.softcap = 2.0f;
            if (variant == 2) p.sliding_window = 6;
            Tensor out = Tensor::zeros(DType::F32, {hd * nh, nt});
            be->attention(q, k, v, pos, p, out);
            std::vector<double> want;
            naive_attention(q, k, v, pos, p, want);
            // Float accumulation of <= 20 terms of unit size: 1e-5 absolute. With an f16
            // cache a probability one float ulp away from the double one can round to the
            // neighbouring f16, 2^-11 of it: 5e-4.
            const double tol = ct == DType::F16 ? 5e-4 : 1e-5;
            for (size_t i = 0; i < want.size(); ++i)
                ASSERT_NEAR(out.data_as<float>()[i], want[i], tol)
                    << dtype_name(ct) << " variant " << variant << " i " << i;
        }
    }
    Tensor bad = rand_tensor({hd, 3, nctx}, 1);
    Tensor out = Tensor::zeros(DType::F32, {hd * nh, nt});
    AttentionParams p;
    p.n_kv = 4;
    EXPECT_THROW(be->attention(q, bad, bad, pos, p, out), Error);
}

TEST(ThreadPool, ParallelRunsEveryIndexOnce) {
    auto be = make_cpu_backend(3);
    std::vector<int> hits(3, 0);
    for (int rep = 0; rep < 20; ++rep) be->parallel([&](int i, int n) { hits[size_t(i)] += n; });
    EXPECT_EQ(hits, (std::vector<int>{60, 60, 60}));
}

}  // namespace
}  // namespace lcx
