// The CPU backend: shape/type checks, work splitting over the thread pool, and the
// row-wise ops. Matrix products go to the kernel table of the selected path
// (kernels_avx512 / kernels_avx2) or to the scalar reference.
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/gemm_avx2.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "common/error.h"
#include "common/fp16.h"
#include "quant/quant.h"
#include "quant/repack.h"

namespace lcx {

namespace {

std::string shape_str(const Tensor& t) {
    std::ostringstream s;
    s << dtype_name(t.type()) << "[";
    for (int i = 0; i < std::max(1, t.n_dims()); ++i) s << (i ? "," : "") << t.ne(i);
    s << "]";
    return s.str();
}

[[noreturn]] void fail(const char* op, const std::string& why,
                       std::initializer_list<const Tensor*> ts) {
    std::string msg = std::string(op) + ": " + why + " (";
    bool first = true;
    for (const Tensor* t : ts) {
        if (!t) continue;
        msg += (first ? "" : ", ") + shape_str(*t);
        first = false;
    }
    throw Error(msg + ")");
}

void need_f32(const char* op, const Tensor& t) {
    if (t.empty()) fail(op, "tensor has no data", {&t});
    if (t.type() != DType::F32) fail(op, "expected F32", {&t});
    if (!t.is_contiguous()) fail(op, "expected a contiguous tensor", {&t});
}

void need_same_shape(const char* op, const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) fail(op, "shape mismatch", {&a, &b});
}

#if defined(__x86_64__) || defined(_M_X64)
// The x86 features the kernel paths need, read from CPUID. The OS must also save the
// vector registers on a context switch (XCR0), or using them faults even on a CPU that
// has them. (Plain CPUID rather than __builtin_cpu_supports, whose feature names differ
// between compilers.)
struct X86Features {
    bool avx2 = false, avx512 = false;
};

X86Features read_x86_features() {
    X86Features f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
               f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return f;
    unsigned lo = 0, hi = 0;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));  // XCR0 (OSXSAVE is set)
    const uint64_t xcr0 = (uint64_t(hi) << 32) | lo;
    const bool ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1, avx512f = (b >> 16) & 1,
               avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1,
               avx512vnni = (c >> 11) & 1;
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    const bool avx512bf16 = (a1 >> 5) & 1;
    f.avx2 = ymm_state && avx2 && fma && f16c && bmi2;
    f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl && avx512vnni &&
               avx512bf16;
    return f;
}
#endif

bool cpu_has(const char* feature) {
#if defined(__x86_64__) || defined(_M_X64)
    static const X86Features f = read_x86_features();
#ifdef LCX_EMULATE_AVX512
    // Test builds: the AVX-512 kernels are emulated with AVX2 (avx512_emulation.h).
    if (std::strcmp(feature, "avx512") == 0) return f.avx2;
#else
    if (std::strcmp(feature, "avx512") == 0) return f.avx512;
#endif
    if (std::strcmp(feature, "avx2") == 0) return f.avx2;
#else
    (void)feature;
#endif
    return false;
}

inline float silu_f(float x) { return x / (1.0f + std::exp(-x)); }
inline float gelu_f(float x) {
    constexpr float kA = 0.044715f;
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kA * x * x)));
}

class CpuBackend final : public Backend {
  public:
    CpuBackend(int n_threads, CpuPath path, const CpuBackendOptions& o)
        : pool_(n_threads), path_(path), repack_(o.repack), f16_as_bf16_(o.f16_as_bf16) {
        switch (path_) {
            case CpuPath::Avx512:
                table_ = &cpu::kernels_avx512();
                break;
            case CpuPath::Avx2:
                table_ = &cpu::kernels_avx2();
                break;
            default:
                table_ = nullptr;
                break;
        }
    }

    std::string name() const override {
        // The bf16 mode changes results, so it is part of the name reports show.
        const bool bf16 = f16_as_bf16_ && table_ && table_->f16_as_bf16;
        return std::string("cpu-") + cpu_path_name(path_) + (bf16 ? " f16-as-bf16" : "") + " (" +
               std::to_string(pool_.size()) + " threads)";
    }
    bool is_available() const override { return true; }
    int n_threads() const override { return pool_.size(); }

    Tensor alloc(DType type, std::span<const int64_t> shape) override {
        return Tensor::zeros(type, shape);
    }

    void parallel(const std::function<void(int, int)>& fn) override { pool_.run(fn); }

    // Runs fn(r0, r1) over [0, n) split into contiguous per-thread ranges; small jobs run
    // on the caller alone (a pool wake-up costs more than they do).
    template <class Fn>
    void for_rows(int64_t n, int64_t work_per_row, Fn&& fn) {
        const int nt = pool_.size();
        if (nt == 1 || n < 2 || n * work_per_row < 32768) {
            fn(int64_t(0), n);
            return;
        }
        pool_.run([&](int ith, int nth) {
            const int64_t r0 = n * ith / nth, r1 = n * (ith + 1) / nth;
            if (r0 < r1) fn(r0, r1);
        });
    }

    // ---- elementwise ----------------------------------------------------------------
    template <class F>
    void binary(const char* op, const Tensor& a, const Tensor& b, Tensor& out, F f) {
        need_f32(op, a);
        need_f32(op, b);
        need_f32(op, out);
        need_same_shape(op, a, out);
        const int64_t k = a.ne(0);
        const bool row = b.n_elements() == k;
        if (!row && a.shape() != b.shape())
            fail(op, "second operand must be one row of the same length or the same shape",
                 {&a, &b});
        const float* pa = a.data_as<float>();
        const float* pb = b.data_as<float>();
        float* po = out.data_as<float>();
        for_rows(a.n_rows(), k, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const float* br = row ? pb : pb + r * k;
                for (int64_t j = 0; j < k; ++j) po[r * k + j] = f(pa[r * k + j], br[j]);
            }
        });
    }
    template <class F>
    void unary(const char* op, const Tensor& a, Tensor& out, F f) {
        need_f32(op, a);
        need_f32(op, out);
        need_same_shape(op, a, out);
        const int64_t k = a.ne(0);
        const float* pa = a.data_as<float>();
        float* po = out.data_as<float>();
        for_rows(a.n_rows(), k * 8, [&](int64_t r0, int64_t r1) {
            for (int64_t i = r0 * k; i < r1 * k; ++i) po[i] = f(pa[i]);
        });
    }

    void add(const Tensor& a, const Tensor& b, Tensor& out) override {
        binary("add", a, b, out, [](float x, float y) { return x + y; });
    }
    void mul(const Tensor& a, const Tensor& b, Tensor& out) override {
        binary("mul", a, b, out, [](float x, float y) { return x * y; });
    }
    void scale(const Tensor& a, float s, Tensor& out) override {
        unary("scale", a, out, [s](float x) { return x * s; });
    }
    void silu(const Tensor& a, Tensor& out) override { unary("silu", a, out, silu_f); }
    void gelu(const Tensor& a, Tensor& out) override { unary("gelu", a, out, gelu_f); }
    void softcap(const Tensor& a, float cap, Tensor& out) override {
        if (!(cap > 0)) fail("softcap", "cap must be positive", {&a});
        unary("softcap", a, out, [cap](float x) { return cap * std::tanh(x / cap); });
    }
    void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
        need_same_shape("swiglu", gate, up);
        if (table_ && table_->swiglu && gate.is_contiguous() && up.is_contiguous() &&
            out.is_contiguous()) {
            need_f32("swiglu", gate);
            need_f32("swiglu", up);
            need_f32("swiglu", out);
            need_same_shape("swiglu", gate, out);
            const int64_t k = gate.ne(0);
            const float* g = gate.data_as<float>();
            const float* u = up.data_as<float>();
            float* o = out.data_as<float>();
            for_rows(gate.n_rows(), k * 8, [&](int64_t r0, int64_t r1) {
                table_->swiglu(g + r0 * k, u + r0 * k, o + r0 * k, (r1 - r0) * k);
            });
            return;
        }
        binary("swiglu", gate, up, out, [](float g, float u) { return silu_f(g) * u; });
    }
    void geglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
        need_same_shape("geglu", gate, up);
        binary("geglu", gate, up, out, [](float g, float u) { return gelu_f(g) * u; });
    }

    // ---- rows ----------------------------------------------------------------------
    void softmax(const Tensor& a, Tensor& out, float scale, bool causal) override {
        need_f32("softmax", a);
        need_f32("softmax", out);
        need_same_shape("softmax", a, out);
        const int64_t k = a.ne(0), n = a.n_rows();
        const int64_t rows_per_mat = a.ne(1);
        const float* pa = a.data_as<float>();
        float* po = out.data_as<float>();
        for_rows(n, k * 8, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t i = r % rows_per_mat;
                const int64_t limit = causal ? i + (k - rows_per_mat) : k - 1;
                softmax_row(pa + r * k, po + r * k, k, scale, limit);
            }
        });
    }

    // Columns > last are masked to zero. Sum in double, as ggml.
    static void softmax_row(const float* x, float* y, int64_t k, float scale, int64_t last) {
        float mx = -INFINITY;
        for (int64_t j = 0; j <= last && j < k; ++j) mx = std::max(mx, x[j] * scale);
        double sum = 0;
        for (int64_t j = 0; j < k; ++j) {
            const float e = (j <= last && mx != -INFINITY) ? std::exp(x[j] * scale - mx) : 0.0f;
            y[j] = e;
            sum += e;
        }
        const float inv = sum > 0 ? float(1.0 / sum) : 0.0f;
        for (int64_t j = 0; j < k; ++j) y[j] *= inv;
    }

    void rms_norm(const Tensor& x, float eps, Tensor& out) override {
        need_f32("rms_norm", x);
        need_f32("rms_norm", out);
        need_same_shape("rms_norm", x, out);
        const int64_t k = x.ne(0);
        const float* px = x.data_as<float>();
        float* po = out.data_as<float>();
        for_rows(x.n_rows(), k * 2, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const float* xr = px + r * k;
                // Squares rounded to float and summed in double, as ggml does. Eight
                // partial sums instead of one chain of dependent adds: the order differs
                // only far below float precision, and the loop runs several times faster.
                double part[8] = {};
                int64_t j = 0;
                for (; j + 8 <= k; j += 8)
                    for (int i = 0; i < 8; ++i) part[i] += double(xr[j + i] * xr[j + i]);
                double sum = ((part[0] + part[1]) + (part[2] + part[3])) +
                             ((part[4] + part[5]) + (part[6] + part[7]));
                for (; j < k; ++j) sum += double(xr[j] * xr[j]);
                const float s = 1.0f / std::sqrt(float(sum / double(k)) + eps);
                for (int64_t j = 0; j < k; ++j) po[r * k + j] = xr[j] * s;
            }
        });
    }

    void layer_norm(const Tensor& x, float eps, const Tensor* weight, const Tensor* bias,
                    Tensor& out) override {
        need_f32("layer_norm", x);
        need_f32("layer_norm", out);
        need_same_shape("layer_norm", x, out);
        const int64_t k = x.ne(0);
        for (const Tensor* t : {weight, bias}) {
            if (!t) continue;
            need_f32("layer_norm", *t);
            if (t->n_elements() != k) fail("layer_norm", "weight/bias must be one row", {&x, t});
        }
        const float* pw = weight ? weight->data_as<float>() : nullptr;
        const float* pb = bias ? bias->data_as<float>() : nullptr;
        const float* px = x.data_as<float>();
        float* po = out.data_as<float>();
        for_rows(x.n_rows(), k * 3, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const float* xr = px + r * k;
                float* yr = po + r * k;
                double sum = 0;
                for (int64_t j = 0; j < k; ++j) sum += xr[j];
                const float mean = float(sum / double(k));
                double var = 0;
                for (int64_t j = 0; j < k; ++j) {
                    const float v = xr[j] - mean;
                    yr[j] = v;
                    var += double(v) * double(v);
                }
                const float s = 1.0f / std::sqrt(float(var / double(k)) + eps);
                for (int64_t j = 0; j < k; ++j) {
                    float v = yr[j] * s;
                    if (pw) v *= pw[j];
                    if (pb) v += pb[j];
                    yr[j] = v;
                }
            }
        });
    }

    void rope(const Tensor& x, std::span<const int32_t> positions, const RopeParams& p,
              Tensor& out) override {
        need_f32("rope", x);
        need_f32("rope", out);
        need_same_shape("rope", x, out);
        const int64_t hd = x.ne(0), nh = x.ne(1), nt = x.ne(2);
        if (int64_t(positions.size()) != nt)
            fail("rope", "positions count " + std::to_string(positions.size()) + " != tokens",
                 {&x});
        if (p.n_rot <= 0 || p.n_rot % 2 != 0 || p.n_rot > hd)
            fail("rope", "n_rot " + std::to_string(p.n_rot) + " must be even and <= head_dim",
                 {&x});
        const int n_rot = p.n_rot;
        const float theta_scale = std::pow(p.freq_base, -2.0f / float(n_rot));
        const float* px = x.data_as<float>();
        float* po = out.data_as<float>();
        for_rows(nt, nh * hd * 4, [&](int64_t t0, int64_t t1) {
            std::vector<float> cs(static_cast<size_t>(n_rot));
            for (int64_t t = t0; t < t1; ++t) {
                // The angles are built by repeated multiplication, as ggml's rope cache does,
                // so they round the same way.
                float theta = float(positions[size_t(t)]);
                for (int i = 0; i < n_rot; i += 2) {
                    const float th = theta * p.freq_scale;
                    cs[size_t(i)] = std::cos(th);
                    cs[size_t(i) + 1] = std::sin(th);
                    theta *= theta_scale;
                }
                for (int64_t h = 0; h < nh; ++h) {
                    const float* xr = px + (t * nh + h) * hd;
                    float* yr = po + (t * nh + h) * hd;
                    if (p.mode == RopeMode::Normal) {
                        for (int i = 0; i < n_rot; i += 2) {
                            const float c = cs[size_t(i)], s = cs[size_t(i) + 1];
                            const float a = xr[i], b = xr[i + 1];
                            yr[i] = a * c - b * s;
                            yr[i + 1] = a * s + b * c;
                        }
                    } else {
                        const int half = n_rot / 2;
                        for (int i = 0; i < half; ++i) {
                            const float c = cs[size_t(2 * i)], s = cs[size_t(2 * i) + 1];
                            const float a = xr[i], b = xr[i + half];
                            yr[i] = a * c - b * s;
                            yr[i + half] = a * s + b * c;
                        }
                    }
                    if (yr != xr)
                        for (int64_t i = n_rot; i < hd; ++i) yr[i] = xr[i];
                }
            }
        });
    }

    // ---- conversion ------------------------------------------------------------------
    void get_rows(const Tensor& w, std::span<const int32_t> ids, Tensor& out) override {
        need_f32("get_rows", out);
        if (!can_dequantize(w.type()) && !is_packed(w.type()))
            fail("get_rows", "unsupported weight type", {&w});
        if (out.ne(0) != w.ne(0) || out.n_rows() != int64_t(ids.size()))
            fail("get_rows",
                 "output must be [" + std::to_string(w.ne(0)) + ", " + std::to_string(ids.size()) +
                     "]",
                 {&w, &out});
        for (int32_t id : ids)
            if (id < 0 || id >= w.n_rows())
                fail("get_rows", "row id " + std::to_string(id) + " out of range", {&w});
        const int64_t k = w.ne(0);
        float* po = out.data_as<float>();
        for_rows(int64_t(ids.size()), k, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) dequantize_any_row(w, ids[size_t(r)], po + r * k);
        });
    }

    // Row r of w (a file type or a packed layout) as floats.
    static void dequantize_any_row(const Tensor& w, int64_t r, float* out) {
        if (is_packed(w.type()))
            dequantize_packed_row(w.type(), w.data(), r, w.ne(0), out);
        else
            dequantize_row(w.type(), w.row(r), out, w.ne(0));
    }

    // Row r of t counted over its dimensions 1..3 in order, for any byte strides.
    template <class T>
    static auto nth_row(T& t, int64_t r) {
        const int64_t n1 = t.ne(1), n2 = t.ne(2);
        return t.row(r % n1, r / n1 % n2, r / (n1 * n2));
    }

    // Rows of src into dst from row first_row on, converting the type. Either may be a
    // strided view (rows contiguous, e.g. one head's rows of a KV cache); packed weights
    // only as whole contiguous tensors.
    void convert_rows(const char* op, const Tensor& src, Tensor& dst, int64_t first_row) {
        if (src.empty() || dst.empty()) fail(op, "tensor has no data", {&src, &dst});
        const bool contiguous = src.is_contiguous() && dst.is_contiguous();
        if (!contiguous && (is_packed(src.type()) || is_packed(dst.type())))
            fail(op, "packed tensors must be contiguous", {&src, &dst});
        if (src.ne(0) != dst.ne(0)) fail(op, "row lengths differ", {&src, &dst});
        const int64_t n = src.n_rows();
        if (first_row < 0 || first_row + n > dst.n_rows())
            fail(op,
                 "rows [" + std::to_string(first_row) + ", " + std::to_string(first_row + n) +
                     ") out of range",
                 {&src, &dst});
        const DType st = src.type(), dt = dst.type();
        const int64_t k = src.ne(0);
        const size_t srb = src.row_size(), drb = dst.row_size();
        const auto* ps = static_cast<const uint8_t*>(src.data());
        auto* pd = static_cast<uint8_t*>(dst.data()) + size_t(first_row) * drb;
        auto src_row = [&](int64_t r) {
            return contiguous ? ps + size_t(r) * srb : nth_row(src, r);
        };
        auto dst_row = [&](int64_t r) {
            return contiguous ? pd + size_t(r) * drb : nth_row(dst, first_row + r);
        };
        if (st == dt) {
            // (A packed layout copies as whole groups, or its row offset would be wrong.)
            if (is_packed(st) && first_row % traits(st).row_group != 0)
                fail(op, "packed rows start on a group", {&src, &dst});
            if (contiguous)
                std::memcpy(pd, ps, size_t(n) * srb);
            else
                for (int64_t r = 0; r < n; ++r) std::memcpy(dst_row(r), src_row(r), srb);
            return;
        }
        if (st == DType::F32) {
            if (dt != DType::F16 && dt != DType::BF16 && dt != DType::Q8_0)
                fail(op, "F32 converts only to F16, BF16, Q8_0", {&src, &dst});
            if (dt == DType::Q8_0 && k % 32 != 0)
                fail(op, "Q8_0 rows need a multiple of 32 elements", {&src, &dst});
            for (int64_t r = 0; r < n; ++r)
                quantize_row(dt, reinterpret_cast<const float*>(src_row(r)), dst_row(r), k);
            return;
        }
        if (dt == DType::F32 && (can_dequantize(st) || is_packed(st))) {
            for (int64_t r = 0; r < n; ++r) {
                auto* out = reinterpret_cast<float*>(dst_row(r));
                if (is_packed(st))
                    dequantize_any_row(src, r, out);
                else
                    dequantize_row(st, src_row(r), out, k);
            }
            return;
        }
        fail(op, "unsupported conversion", {&src, &dst});
    }

    void copy(const Tensor& src, Tensor& dst) override {
        if (src.n_rows() != dst.n_rows()) fail("copy", "row counts differ", {&src, &dst});
        convert_rows("copy", src, dst, 0);
    }
    void store_rows(const Tensor& src, Tensor& dst, int64_t first_row) override {
        convert_rows("store_rows", src, dst, first_row);
    }
    void dequantize(const Tensor& w, Tensor& out) override {
        need_f32("dequantize", out);
        if (w.n_elements() != out.n_elements() || w.ne(0) != out.ne(0))
            fail("dequantize", "output shape must match", {&w, &out});
        convert_rows("dequantize", w, out, 0);
    }

    // ---- products ------------------------------------------------------------------
    DType matmul_layout(DType type, int64_t n_rows, int64_t k) const override {
        const auto packed = packed_layout(type);
        if (!repack_ || !packed || !table_ || !table_->get(*packed) ||
            !can_pack(*packed, n_rows, k))
            return type;
        return *packed;
    }

    void matmul(const Tensor& w, const Tensor& x, Tensor& y) override {
        MatmulTask t{&w, &y};
        matmul_many(x, std::span<const MatmulTask>(&t, 1));
    }

    void matmul_many(const Tensor& x, std::span<const MatmulTask> tasks) override {
        need_f32("matmul", x);
        if (tasks.empty()) return;
        const int64_t k = x.ne(0), m = x.n_rows();
        for (const auto& t : tasks) check_task(x, t);
        std::vector<bool> done(tasks.size(), false);
        for (size_t i = 0; i < tasks.size(); ++i) {
            if (done[i]) continue;
            const cpu::ActKind kind = act_kind(tasks[i].w->type(), m, k);
            convert_input(x, kind);
            // Every task of this kind against the converted input, in one pool run: rows of
            // all tasks form one list that threads split evenly.
            group_.clear();
            int64_t total = 0;
            for (size_t j = i; j < tasks.size(); ++j) {
                if (done[j] || act_kind(tasks[j].w->type(), m, k) != kind) continue;
                done[j] = true;
                // Each task starts on a 16-row part boundary, so a part never splits a
                // packed weight's group of rows.
                total = (total + 15) / 16 * 16;
                group_.push_back({&tasks[j], total});
                total += tasks[j].w->ne(1);
            }
            run_group(total, k, m);
        }
    }

    // Prompts fused: each part of kGluRows hidden units takes its gate rows into `hidden`,
    // its up rows into a small per-thread tile, and applies the activation there, so `up`
    // is never written and the activation costs no pass of its own. Every row is computed
    // by the kernels matmul_many runs, from a 16-row boundary, and the activation is the
    // elementwise op's: the bits are those of the unfused order. Decode (few rows) keeps
    // that order, whose parts let the kernels' prefetch run through a whole weight.
    static constexpr int64_t kGluRows = 64;
    static constexpr int64_t kGluMinTokens = 16;

    void matmul_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, Glu act,
                    Tensor& hidden, Tensor& up) override {
        need_f32("matmul", x);
        const MatmulTask tasks[] = {{&w_gate, &hidden}, {&w_up, &up}};
        for (const auto& t : tasks) check_task(x, t);
        const int64_t m = x.n_rows(), k = x.ne(0), n_ff = w_gate.ne(1);
        const cpu::ActKind kind = act_kind(w_gate.type(), m, k);
        if (m < kGluMinTokens || kind != act_kind(w_up.type(), m, k) || w_up.ne(1) != n_ff ||
            !hidden.is_contiguous() || (act == Glu::Silu && !(table_ && table_->swiglu))) {
            Backend::matmul_glu(x, w_gate, w_up, act, hidden, up);
            return;
        }
        convert_input(x, kind);
        const cpu::MatmulFn gate_fn = kernel_for(w_gate.type(), m, k);
        const cpu::MatmulFn up_fn = kernel_for(w_up.type(), m, k);
        float* h = hidden.data_as<float>();
        const auto run_part = [&](int p) {
            const int64_t a = kGluRows * p, n = std::min(kGluRows, n_ff - a);
            gate_fn(w_gate, a, a + n, act_, h, size_t(n_ff));
            thread_local std::vector<float> tile;
            if (tile.size() < size_t(n * m)) tile.resize(size_t(n * m));
            up_fn(w_up.rows(a, n), 0, n, act_, tile.data(), size_t(n));
            for (int64_t t = 0; t < m; ++t) {
                float* ht = h + t * n_ff + a;
                const float* ut = tile.data() + t * n;
                if (act == Glu::Silu)
                    table_->swiglu(ht, ut, ht, n);
                else
                    for (int64_t j = 0; j < n; ++j) ht[j] = gelu_f(ht[j]) * ut[j];
            }
        };
        const int n_parts = int((n_ff + kGluRows - 1) / kGluRows);
        if (pool_.size() == 1 || 2 * n_ff * k * m < kMinSplitMacs) {
            for (int p = 0; p < n_parts; ++p) run_part(p);
            return;
        }
        pool_.run_parts(n_parts, run_part);
    }

    void check_task(const Tensor& x, const MatmulTask& t) const {
        const int64_t k = x.ne(0), m = x.n_rows();
        if (!t.w || !t.y) throw Error("matmul: task without weight or output");
        const Tensor& w = *t.w;
        if (w.empty()) fail("matmul", "weight has no data", {&w});
        if (!cpu::matmul_supported(w.type())) fail("matmul", "unsupported weight type", {&w});
        if (w.ne(0) != k) fail("matmul", "weight row length != input row length", {&w, &x});
        if (w.ne(2) != 1 || w.ne(3) != 1) fail("matmul", "weight must be 2-D", {&w});
        if (!w.is_contiguous()) fail("matmul", "weight must be contiguous", {&w});
        need_f32("matmul", *t.y);
        if (t.y->ne(0) != w.ne(1) || t.y->n_rows() != m)
            fail("matmul",
                 "output must be [" + std::to_string(w.ne(1)) + ", " + std::to_string(m) + "]",
                 {&w, &x, t.y});
    }

    // x converted into act_ in the activation format of `kind`, rows split between threads.
    void convert_input(const Tensor& x, cpu::ActKind kind) {
        const int64_t k = x.ne(0), m = x.n_rows();
        const float* px = x.data_as<float>();
        act_resize(act_, kind, k, m);
        for_rows(m, k * 4, [&](int64_t m0, int64_t m1) {
            cpu::act_convert(act_, px, size_t(k), m0, m1, table_);
            if (table_ && table_->act_tiles) table_->act_tiles(act_, m0, m1);
        });
    }

    // Whether a product of F16 weights with m activation rows of k runs in bf16
    // (CpuBackendOptions::f16_as_bf16): prompts only, pairs of weights, and only where the
    // path has the kernel.
    bool f16_in_bf16(DType type, int64_t m, int64_t k) const {
        return f16_as_bf16_ && type == DType::F16 && m > cpu::kFloatDotMaxM && k % 2 == 0 &&
               table_ && table_->f16_as_bf16;
    }
    cpu::ActKind act_kind(DType type, int64_t m, int64_t k) const {
        return f16_in_bf16(type, m, k) ? cpu::ActKind::BF16 : cpu::act_kind_for(type);
    }
    cpu::MatmulFn kernel_for(DType type, int64_t m, int64_t k) const {
        if (f16_in_bf16(type, m, k)) return table_->f16_as_bf16;
        return kernel_for(type);
    }
    cpu::MatmulFn kernel_for(DType type) const {
        cpu::MatmulFn fn = table_ ? table_->get(type) : nullptr;
        return fn ? fn : cpu::matmul_ref;
    }

    // Below 2^18 multiply-adds (some 10-25 us on one core) a pool wake-up, the join and the
    // workers' spinning afterwards cost more than the split saves: on the 2-core build
    // machine a 344 x 64 x 4 product (a tiny model's FFN for 4 server slots) took 2-3x
    // longer on 2 threads than on 1.
    static constexpr int64_t kMinSplitMacs = int64_t(1) << 18;

    struct GroupEntry {
        const MatmulTask* task;
        int64_t first;  // index of its first row in the concatenated row list
    };

    static constexpr int kPartsPerThread = 8;

    void run_group(int64_t total, int64_t k, int64_t m) {
        auto run_range = [&](int64_t r0, int64_t r1) {
            for (const auto& g : group_) {
                const Tensor& w = *g.task->w;
                const int64_t a = std::max(r0, g.first), b = std::min(r1, g.first + w.ne(1));
                if (a >= b) continue;
                kernel_for(w.type(), m, k)(w, a - g.first, b - g.first, act_,
                                           g.task->y->data_as<float>(), size_t(w.ne(1)));
            }
        };
        const int nt = pool_.size();
        if (nt == 1 || total * k * m < kMinSplitMacs) {
            run_range(0, total);
            return;
        }
        // Parts are multiples of 16 rows (the kernels' row tile) so every row is computed
        // the same way whatever the thread count. Several parts per thread, claimed in
        // turn, so a thread that starts late (a loaded machine) leaves its share to the
        // others instead of holding up the op.
        const int64_t blocks = (total + 15) / 16;
        const int n_parts = int(std::min<int64_t>(blocks, int64_t(kPartsPerThread) * nt));
        pool_.run_parts(n_parts, [&](int p) {
            const int64_t b0 = blocks * p / n_parts, b1 = blocks * (p + 1) / n_parts;
            const int64_t r0 = b0 * 16, r1 = std::min(total, b1 * 16);
            if (r0 < r1) run_range(r0, r1);
        });
    }

    // ---- attention ----------------------------------------------------------------
    void attention(const Tensor& q, const Tensor& k, const Tensor& v,
                   std::span<const int32_t> positions, const AttentionParams& p, Tensor& out,
                   std::span<const int32_t> kv_positions) override;

  private:
    ThreadPool pool_;
    CpuPath path_;
    bool repack_ = true;
    bool f16_as_bf16_ = false;
    const cpu::KernelTable* table_ = nullptr;
    cpu::ActRows act_;
    std::vector<GroupEntry> group_;
};

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           std::span<const int32_t> positions, const AttentionParams& p,
                           Tensor& out, std::span<const int32_t> kv_positions) {
    const char* op = "attention";
    need_f32(op, q);
    need_f32(op, out);
    const int64_t hd = q.ne(0), nh = q.ne(1), nt = q.ne(2);
    for (const Tensor* c : {&k, &v}) {
        if (c->empty()) fail(op, "cache has no data", {c});
        if (c->type() != DType::F32 && c->type() != DType::F16 && c->type() != DType::Q8_0)
            fail(op, "cache must be F32, F16 or Q8_0", {c});
        // Any strides of heads and cells (a view of one region of a cache, a head's cells
        // adjacent), but the tensor must be 3-D.
        if (c->ne(3) != 1) fail(op, "cache must be [head_dim, n_head_kv, n_cells]", {c});
    }
    if (k.shape() != v.shape()) fail(op, "K and V caches differ in shape", {&k, &v});
    const int64_t nkvh = k.ne(1), nctx = k.ne(2);
    if (k.ne(0) != hd) fail(op, "cache head_dim != query head_dim", {&q, &k});
    if (nkvh <= 0 || nh % nkvh != 0) fail(op, "n_head must be a multiple of n_head_kv", {&q, &k});
    if (p.n_kv < 0 || p.n_kv > nctx)
        fail(op, "n_kv " + std::to_string(p.n_kv) + " exceeds the cache", {&k});
    if (int64_t(positions.size()) != nt) fail(op, "one position per token needed", {&q});
    if (!kv_positions.empty() && int64_t(kv_positions.size()) < p.n_kv)
        fail(op, "kv_positions shorter than n_kv", {&k});
    if (out.ne(0) != hd * nh || out.n_rows() != nt)
        fail(op, "output must be [head_dim*n_head, n_tokens]", {&q, &out});
    cpu::AttnArgs a;
    a.q = q.data_as<float>();
    a.out = out.data_as<float>();
    a.k = k.row(0);
    a.v = v.row(0);
    a.k_row_bytes = k.row_size();
    a.v_row_bytes = v.row_size();
    a.k_head_bytes = k.nb(1);
    a.k_cell_bytes = k.nb(2);
    a.v_head_bytes = v.nb(1);
    a.v_cell_bytes = v.nb(2);
    a.kt = k.type();
    a.vt = v.type();
    a.hd = hd;
    a.n_head = nh;
    a.n_head_kv = nkvh;
    a.n_tokens = nt;
    a.n_kv = p.n_kv;
    a.positions = positions.data();
    a.kv_positions = kv_positions.empty() ? nullptr : kv_positions.data();
    a.p = p;
    cpu::attention_run(a, path_, pool_);
}

}  // namespace

CpuPath cpu_best_path() {
    if (const char* env = std::getenv("LCX_CPU")) {
        const std::string s(env);
        if (s == "scalar") return CpuPath::Scalar;
        if (s == "avx2" && cpu_has("avx2")) return CpuPath::Avx2;
        if (s == "avx512" && cpu_has("avx512")) return CpuPath::Avx512;
    }
    if (cpu_has("avx512")) return CpuPath::Avx512;
    if (cpu_has("avx2")) return CpuPath::Avx2;
    return CpuPath::Scalar;
}

bool cpu_path_supported(CpuPath path) {
    switch (path) {
        case CpuPath::Auto:
        case CpuPath::Scalar:
            return true;
        case CpuPath::Avx2:
            return cpu_has("avx2");
        case CpuPath::Avx512:
            return cpu_has("avx512");
    }
    return false;
}

const char* cpu_path_name(CpuPath path) {
    switch (path) {
        case CpuPath::Auto:
            return "auto";
        case CpuPath::Scalar:
            return "scalar";
        case CpuPath::Avx2:
            return "avx2";
        case CpuPath::Avx512:
            return "avx512";
    }
    return "?";
}

std::unique_ptr<Backend> make_cpu_backend(int n_threads, CpuBackendOptions options) {
    if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
    CpuPath path = options.path == CpuPath::Auto ? cpu_best_path() : options.path;
    if (!cpu_path_supported(path))
        throw Error(std::string("cpu backend: this CPU cannot run the ") + cpu_path_name(path) +
                    " path");
    return std::make_unique<CpuBackend>(n_threads, path, options);
}

}  // namespace lcx
