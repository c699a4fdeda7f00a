// The blocked attention fast path against the scalar reference on random shapes, and its
// independence from the thread count.
#include "backend/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace lcx {
namespace {

struct Case {
    int64_t hd, nh, nkvh, nt, nctx, n_kv;
    DType kt, vt;
    AttentionParams p;
    bool kv_pos;             // random kv_positions with empty cells
    bool head_major = true;  // a head's cells adjacent (as the KV cache), else a cell's heads
};

struct Data {
    Tensor q, k, v;
    std::vector<int32_t> pos, kvpos;
};

Data make_data(const Case& c, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Data d;
    d.q = Tensor::zeros(DType::F32, {c.hd, c.nh, c.nt});
    for (int64_t i = 0; i < d.q.n_elements(); ++i) d.q.data_as<float>()[i] = nd(rng);
    auto be = make_cpu_backend(1);
    for (auto [dst, t] : {std::pair{&d.k, c.kt}, std::pair{&d.v, c.vt}}) {
        // Row (cell, head) of f is the cache row of that head and cell in either layout.
        Tensor f = Tensor::zeros(DType::F32, {c.hd, c.nkvh, c.nctx});
        for (int64_t i = 0; i < f.n_elements(); ++i) f.data_as<float>()[i] = nd(rng);
        if (c.head_major) {
            *dst = Tensor::zeros(t, {c.hd, c.nctx, c.nkvh});
            for (int64_t h = 0; h < c.nkvh; ++h) {
                const Tensor src = f.view({c.hd, c.nctx}, {f.nb(2)}, size_t(h) * f.nb(1));
                Tensor head = dst->view({c.hd, c.nctx}, {dst->nb(1)}, size_t(h) * dst->nb(2));
                be->copy(src, head);
            }
        } else {
            *dst = Tensor::zeros(t, {c.hd, c.nkvh, c.nctx});
            be->store_rows(f, *dst, 0);
        }
    }
    // Tokens at the end of the filled cells, as in prefill after a prompt prefix.
    for (int64_t t = 0; t < c.nt; ++t) d.pos.push_back(int32_t(c.n_kv - c.nt + t));
    if (c.kv_pos) {
        // Cells hold shuffled positions; about one in five is empty.
        std::vector<int32_t> ps(size_t(c.n_kv));
        for (int64_t i = 0; i < c.n_kv; ++i) ps[size_t(i)] = int32_t(i);
        std::shuffle(ps.begin(), ps.end(), rng);
        for (auto& x : ps)
            if (rng() % 5 == 0) x = -1;
        d.kvpos = ps;
    }
    return d;
}

// A cache as the attention op takes it: [hd, nkvh, cells], at the layout's strides.
Tensor as_cache(const Case& c, const Tensor& t) {
    return c.head_major ? t.view({c.hd, c.nkvh, c.nctx}, {t.nb(2), t.nb(1)}, 0) : t;
}

cpu::AttnArgs args(const Case& c, const Data& d, Tensor& out) {
    cpu::AttnArgs a;
    a.q = d.q.data_as<float>();
    a.out = out.data_as<float>();
    a.k = d.k.row(0);
    a.v = d.v.row(0);
    a.k_row_bytes = d.k.row_size();
    a.v_row_bytes = d.v.row_size();
    // Head and cell strides of the layout (see make_data).
    a.k_head_bytes = c.head_major ? d.k.nb(2) : d.k.nb(1);
    a.k_cell_bytes = c.head_major ? d.k.nb(1) : d.k.nb(2);
    a.v_head_bytes = c.head_major ? d.v.nb(2) : d.v.nb(1);
    a.v_cell_bytes = c.head_major ? d.v.nb(1) : d.v.nb(2);
    a.kt = c.kt;
    a.vt = c.vt;
    a.hd = c.hd;
    a.n_head = c.nh;
    a.n_head_kv = c.nkvh;
    a.n_tokens = c.nt;
    a.n_kv = c.n_kv;
    a.positions = d.pos.data();
    a.kv_positions = d.kvpos.empty() ? nullptr : d.kvpos.data();
    a.p = c.p;
    return a;
}

// Fast path vs reference: the same roundings (f16 Q and P), different summation orders
// and a polynomial exp (~1 ulp). Outputs are convex combinations of unit-size V rows, so
// an absolute 1e-5 covers float accumulation over a few hundred cells and Q8_0 K's
// product rounding of dequantized values (seen: 1.5e-6). With an f16 V, a probability one
// float ulp away can round to the neighbouring f16, 2^-11 of it: 5e-4 (seen: 1.4e-4).
double tolerance(const Case& c) { return c.vt == DType::F16 ? 5e-4 : 1e-5; }

TEST(Attention, FastMatchesReferenceOnRandomShapes) {
    cpu::AttnArgs probe;
    probe.hd = 64;
    if (!cpu::attention_block(probe, CpuPath::Avx2)) GTEST_SKIP() << "no fast attention here";
    // The AVX-512 path, where the machine has it, must give the AVX2 path's bits.
    const bool wide = cpu_path_supported(CpuPath::Avx512);
    int n_wide = 0;
    ThreadPool pool(3);
    std::mt19937 rng(7);
    const DType types[] = {DType::F32, DType::F16, DType::Q8_0};
    const int64_t hds[] = {8, 32, 64, 80, 128};
    int n_fast = 0;
    for (int iter = 0; iter < 120; ++iter) {
        Case c;
        c.hd = hds[rng() % 5];
        c.nkvh = 1 + rng() % 3;
        c.nh = c.nkvh * (1 + rng() % 8);
        c.nctx = 1 + rng() % 300;
        c.n_kv = 1 + int64_t(rng() % uint32_t(c.nctx));
        c.nt = 1 + int64_t(rng() % uint32_t(std::min<int64_t>(c.n_kv, 40)));
        c.kt = types[rng() % 3];
        c.vt = types[rng() % 3];
        if (c.hd % 32 != 0) {
            if (c.kt == DType::Q8_0) c.kt = DType::F16;
            if (c.vt == DType::Q8_0) c.vt = DType::F16;
        }
        c.p.scale = 1.0f / std::sqrt(float(c.hd));
        c.p.causal = rng() % 4 != 0;
        if (rng() % 3 == 0) c.p.softcap = 2.0f + float(rng() % 30);
        if (rng() % 3 == 0) c.p.sliding_window = 1 + int32_t(rng() % 40);
        c.p.n_kv = c.n_kv;
        c.kv_pos = rng() % 3 == 0;
        c.head_major = iter % 2 == 0;  // (not from rng: the cases stay those of before)
        Data d = make_data(c, uint32_t(iter));
        Tensor want = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
        Tensor got = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
        const cpu::AttnArgs aw = args(c, d, want), ag = args(c, d, got);
        cpu::attention_run(aw, CpuPath::Scalar, pool);
        cpu::attention_run(ag, CpuPath::Avx2, pool);
        n_fast += cpu::attention_block(ag, CpuPath::Avx2) != nullptr;
        if (wide) {
            Tensor got512 = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
            cpu::attention_run(args(c, d, got512), CpuPath::Avx512, pool);
            ASSERT_EQ(0, std::memcmp(got512.data(), got.data(), got.n_bytes()))
                << "iter " << iter << " hd " << c.hd << " nh " << c.nh << "/" << c.nkvh << " nt "
                << c.nt << " n_kv " << c.n_kv;
            ++n_wide;
        }
        const double tol = tolerance(c);
        for (int64_t i = 0; i < want.n_elements(); ++i)
            ASSERT_NEAR(got.data_as<float>()[i], want.data_as<float>()[i], tol)
                << "iter " << iter << " hd " << c.hd << " nh " << c.nh << "/" << c.nkvh << " nt "
                << c.nt << " n_kv " << c.n_kv << " K " << dtype_name(c.kt) << " V "
                << dtype_name(c.vt) << " causal " << c.p.causal << " softcap " << c.p.softcap
                << " window " << c.p.sliding_window << " kvpos " << c.kv_pos << " i " << i;
    }
    EXPECT_EQ(n_fast, 120);
    if (wide)
        EXPECT_EQ(n_wide, 120);
    else
        std::printf("AVX-512 attention not compared: this machine lacks AVX-512\n");
}

// Calls of at most 8 rows per KV head (decode, and a few tokens of a small group) take
// the row-per-lane kernel, and those of one (multi-head attention decoding a token) the
// single-row kernel: every head_dim they specialize (64, 128) or not, groups of 8 to 1
// query heads, one to several tokens (each with its own causal limit), on 1 thread (whole
// groups per item) and 4 (items split a group's heads), empty cells, windows,
// soft-capping and a Q8_0 V.
TEST(Attention, FewRowsMatchReference) {
    ThreadPool pools[2] = {ThreadPool(1), ThreadPool(4)};
    std::mt19937 rng(3);
    const struct {
        int64_t hd, nh, nkvh, nt;
    } shapes[] = {{64, 32, 4, 1}, {128, 8, 2, 2},  {64, 8, 4, 4}, {32, 4, 4, 5},
                  {80, 12, 3, 2}, {128, 16, 2, 1}, {64, 3, 1, 2}, {64, 8, 1, 1},
                  {128, 4, 4, 1}, {64, 2, 2, 1},   {40, 3, 3, 1}};
    for (int iter = 0; iter < 66; ++iter) {
        const auto& sh = shapes[iter % 11];
        Case c{sh.hd, sh.nh, sh.nkvh, sh.nt, 0, 0, DType::F16, DType::F16, {}, false};
        c.nctx = 40 + int64_t(rng() % 300);
        c.n_kv = std::max<int64_t>(c.nt, c.nctx - int64_t(rng() % 8));
        c.kt = iter % 3 == 0 ? DType::F32 : DType::F16;
        c.vt = iter % 4 == 1 ? DType::F32
                             : (iter % 4 == 3 && c.hd % 32 == 0 ? DType::Q8_0 : DType::F16);
        c.p.scale = 1.0f / std::sqrt(float(c.hd));
        c.p.causal = iter % 5 != 0;
        if (iter % 6 == 2) c.p.softcap = 5.0f;
        if (iter % 7 == 3) c.p.sliding_window = 1 + int32_t(rng() % 64);
        c.p.n_kv = c.n_kv;
        c.kv_pos = iter % 3 == 1;
        c.head_major = iter % 2 == 0;
        Data d = make_data(c, uint32_t(100 + iter));
        Tensor want = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
        Tensor got = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
        const cpu::AttnArgs aw = args(c, d, want), ag = args(c, d, got);
        ASSERT_NE(cpu::attention_block(ag, CpuPath::Avx2), nullptr);
        ThreadPool& pool = pools[(iter / 11) % 2];
        cpu::attention_run(aw, CpuPath::Scalar, pool);
        cpu::attention_run(ag, CpuPath::Avx2, pool);
        const double tol = tolerance(c);
        for (int64_t i = 0; i < want.n_elements(); ++i)
            ASSERT_NEAR(got.data_as<float>()[i], want.data_as<float>()[i], tol)
                << "iter " << iter << " hd " << c.hd << " nh " << c.nh << "/" << c.nkvh << " nt "
                << c.nt << " n_kv " << c.n_kv << " K " << dtype_name(c.kt) << " V "
                << dtype_name(c.vt) << " threads " << pool.size() << " i " << i;
        // The AVX-512 path (16-lane products of 8-row groups) gives the AVX2 path's bits.
        if (cpu_path_supported(CpuPath::Avx512)) {
            Tensor got512 = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
            cpu::attention_run(args(c, d, got512), CpuPath::Avx512, pool);
            ASSERT_EQ(0, std::memcmp(got512.data(), got.data(), got.n_bytes())) << "iter " << iter;
        }
    }
}

// The same cache in either layout (a head's cells adjacent, or a cell's heads): the same
// values in the same order of operations, so the same bits, on both paths.
TEST(Attention, LayoutsOfTheCacheGiveTheSameBits) {
    ThreadPool pool(2);
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
        Case c{64, 16, 4, 3, 70, 70, t, t, {}, false};
        c.p.n_kv = c.n_kv;
        c.p.scale = 0.125f;
        c.p.causal = true;
        Tensor out[2][2];
        for (int hm = 0; hm < 2; ++hm) {
            c.head_major = hm == 1;
            Data d = make_data(c, 11);  // same seed: the same values
            for (int fast = 0; fast < 2; ++fast) {
                out[hm][fast] = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
                cpu::attention_run(args(c, d, out[hm][fast]),
                                   fast == 1 ? CpuPath::Avx2 : CpuPath::Scalar, pool);
            }
        }
        for (int fast = 0; fast < 2; ++fast)
            EXPECT_EQ(std::memcmp(out[0][fast].data(), out[1][fast].data(), out[0][fast].n_bytes()),
                      0)
                << dtype_name(t) << (fast ? " fast" : " reference");
    }
}

// A token that sees no cell (all empty) gets a zero output, as in the reference.
TEST(Attention, RowSeeingNothingIsZero) {
    Case c{64, 8, 2, 3, 40, 40, DType::F16, DType::F16, {}, true};
    c.p.n_kv = c.n_kv;
    c.p.scale = 0.125f;
    Data d = make_data(c, 3);
    for (auto& x : d.kvpos) x = x < 30 ? -1 : x;  // cells hold positions >= 30 or nothing
    d.pos = {5, 35, 39};                          // so token 0 sees no cell
    ThreadPool pool(2);
    Tensor want = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
    Tensor got = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
    cpu::attention_run(args(c, d, want), CpuPath::Scalar, pool);
    cpu::attention_run(args(c, d, got), CpuPath::Avx2, pool);
    for (int64_t i = 0; i < want.n_elements(); ++i)
        ASSERT_NEAR(got.data_as<float>()[i], want.data_as<float>()[i], 2e-5) << i;
    for (int64_t i = 0; i < c.hd * c.nh; ++i) ASSERT_EQ(got.data_as<float>()[i], 0.0f);
}

// The backend's results are bit-identical for any thread count (prefill and decode).
TEST(Attention, BitIdenticalAcrossThreadCounts) {
    for (int64_t nt : {1, 37}) {
        Case c{64, 32, 4, nt, 200, 150, DType::F16, DType::F16, {}, false};
        c.p.n_kv = c.n_kv;
        c.p.scale = 0.125f;
        Data d = make_data(c, 11);
        std::vector<float> first;
        for (int n : {1, 2, 3, 5, 8}) {
            auto be = make_cpu_backend(n);
            Tensor out = Tensor::zeros(DType::F32, {c.hd * c.nh, c.nt});
            be->attention(d.q, as_cache(c, d.k), as_cache(c, d.v), d.pos, c.p, out);
            std::vector<float> got(out.data_as<float>(), out.data_as<float>() + out.n_elements());
            if (first.empty())
                first = got;
            else
                ASSERT_EQ(0, std::memcmp(first.data(), got.data(), got.size() * 4))
                    << "threads " << n << " nt " << nt;
        }
    }
}

}  // namespace
}  // namespace lcx
