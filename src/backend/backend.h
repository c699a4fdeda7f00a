// The Backend interface: every numeric operation the forward pass needs, on Tensors.
//
// Conventions (ggml order: ne(0) is the contiguous row length):
//  - Outputs are passed in pre-allocated (use alloc() once per context, never per token);
//    an op checks the output's type and shape and throws lcx::Error naming the op and the
//    shapes on any mismatch. Elementwise ops may run in place (out aliases an input).
//  - Activations are F32 unless stated. Inputs/outputs must be contiguous unless stated.
//  - "Row broadcast": a second operand with ne(0) equal to the first's and a single row
//    is applied to every row (biases, norm weights); a full-size operand is elementwise.
//  - Matmul: W has ne(0) = K (row length) and ne(1) = N rows (any supported weight type);
//    X is F32 with ne(0) = K and ne(1) = M tokens (higher dims flattened into M);
//    Y is F32 with ne(0) = N, ne(1) = M:  y[m][n] = dot(W row n, X row m).
//    Quantized weights are multiplied against activations quantized once per call to the
//    8-bit format ggml uses for that weight type (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1
//    for Q4_1/Q5_1, Q8_K for the K-quants and IQ4_XS), so results track llama.cpp's.
//    F16 weights use F16-rounded activations and BF16 weights BF16-rounded activations,
//    as ggml does; F32 weights use F32.
//  - Results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "tensor/tensor.h"

namespace lcx {

// One product of a matmul_many() call: y = W · x for the shared x.
// The activation of a gated FFN (Backend::matmul_glu).
enum class Glu { Silu, Gelu };

struct MatmulTask {
    const Tensor* w = nullptr;
    Tensor* y = nullptr;
};

// Rotary embedding variants.
enum class RopeMode {
    Normal,  // rotate adjacent pairs (x[2i], x[2i+1]) — LLaMA
    NeoX,    // rotate (x[i], x[i + n_rot/2]) — NeoX, Qwen2, Phi-3, Gemma
};

struct RopeParams {
    int n_rot = 0;  // rotated dimensions per head (even, <= head_dim); the rest pass through
    RopeMode mode = RopeMode::Normal;
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;  // positions are multiplied by this (linear scaling)
};

struct AttentionParams {
    float scale = 1.0f;          // multiplies Q·K (usually 1/sqrt(head_dim))
    float softcap = 0.0f;        // > 0: logits = softcap * tanh(logits / softcap) (Gemma-2)
    int32_t sliding_window = 0;  // > 0: a token at position p sees keys at p' > p - window
    bool causal = true;          // a token at position p sees keys at positions p' <= p
    int64_t n_kv = 0;            // cache cells [0, n_kv) are attended
};

// Which CPU kernels run. Auto picks the best the CPU supports; the environment variable
// LCX_CPU=scalar|avx2|avx512 overrides Auto (tests use it or the option to cover all paths).
enum class CpuPath { Auto, Scalar, Avx2, Avx512 };

class Backend {
  public:
    virtual ~Backend() = default;

    virtual std::string name() const = 0;  // e.g. "cpu-avx512 (2 threads)"
    virtual bool is_available() const = 0;
    virtual int n_threads() const = 0;

    // A zero-filled, 64-byte aligned tensor this backend can compute on.
    virtual Tensor alloc(DType type, std::span<const int64_t> shape) = 0;
    Tensor alloc(DType type, std::initializer_list<int64_t> shape) {
        return alloc(type, std::span<const int64_t>(shape.begin(), shape.size()));
    }

    // ---- elementwise (F32) ----------------------------------------------------------
    virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;  // b may be a row
    virtual void mul(const Tensor& a, const Tensor& b, Tensor& out) = 0;  // b may be a row
    virtual void scale(const Tensor& a, float s, Tensor& out) = 0;
    virtual void silu(const Tensor& a, Tensor& out) = 0;
    virtual void gelu(const Tensor& a, Tensor& out) = 0;  // tanh approximation, as ggml
    // Soft-cap: out = cap * tanh(a / cap) (Gemma-2 final logits).
    virtual void softcap(const Tensor& a, float cap, Tensor& out) = 0;
    // out = silu(gate) * up and out = gelu(gate) * up; same shapes.
    virtual void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
    virtual void geglu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;

    // ---- rows ----------------------------------------------------------------------
    // Softmax over each row of `a` after multiplying by `scale`. With `causal` set, row i
    // of a [n_cols, n_rows] tensor masks columns j > i + (n_cols - n_rows) (the last rows
    // are the newest tokens).
    virtual void softmax(const Tensor& a, Tensor& out, float scale = 1.0f, bool causal = false) = 0;
    // out = x / sqrt(mean(x^2) + eps), per row. Multiply by the weight with mul().
    virtual void rms_norm(const Tensor& x, float eps, Tensor& out) = 0;
    // out = (x - mean) / sqrt(var + eps) * weight + bias, per row; weight/bias optional
    // (nullptr), each a single row of ne(0) = x.ne(0).
    virtual void layer_norm(const Tensor& x, float eps, const Tensor* weight, const Tensor* bias,
                            Tensor& out) = 0;
    // Rotary embedding in place-capable form on x = [head_dim, n_heads, n_tokens] F32;
    // positions[t] is token t's position. out may alias x.
    virtual void rope(const Tensor& x, std::span<const int32_t> positions, const RopeParams& p,
                      Tensor& out) = 0;

    // ---- conversion ------------------------------------------------------------------
    // Embedding lookup: out row i = dequantized row ids[i] of w (any supported type).
    // out is F32 [w.ne(0), ids.size()].
    virtual void get_rows(const Tensor& w, std::span<const int32_t> ids, Tensor& out) = 0;
    // Converts src into dst row by row; same ne(0) and row count. Supported:
    // F32 -> F32/F16/BF16/Q8_0, F16/BF16/Q8_0 -> F32 (and any weight type -> F32).
    // Either may be a strided view (Tensor::view); packed weights only whole.
    virtual void copy(const Tensor& src, Tensor& dst) = 0;
    // Converts the rows of src (flattened) into rows [first_row, first_row + rows) of dst
    // (flattened, in dimension order); same ne(0). This is the KV-cache append: the model
    // stores each head's new rows into a view of that head's cells.
    virtual void store_rows(const Tensor& src, Tensor& dst, int64_t first_row) = 0;
    // Dequantizes any supported weight type into F32 of the same shape.
    virtual void dequantize(const Tensor& w, Tensor& out) = 0;

    // ---- products ------------------------------------------------------------------
    // The layout in which this backend multiplies a weight of `type`, `n_rows` rows of `k`,
    // fastest: `type` itself or a packed layout of it (quant/repack.h), which a model
    // loaded for this backend makes once for the weights that only matmul reads.
    virtual DType matmul_layout(DType type, int64_t n_rows, int64_t k) const {
        (void)n_rows;
        (void)k;
        return type;
    }
    virtual void matmul(const Tensor& w, const Tensor& x, Tensor& y) = 0;
    // Several products sharing one input x (Q/K/V, gate/up): x is converted once.
    virtual void matmul_many(const Tensor& x, std::span<const MatmulTask> tasks) = 0;
    // A gated FFN's hidden layer: hidden = act(x W_gate) * (x W_up), act SiLU (SwiGLU) or
    // GELU (GeGLU). `up` is scratch of hidden's shape; a backend that fuses the products
    // with the activation may leave it untouched (the CPU backend does for prompts, so a
    // prompt's up projection never takes its own memory).
    virtual void matmul_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, Glu act,
                            Tensor& hidden, Tensor& up) {
        const MatmulTask tasks[] = {{&w_gate, &hidden}, {&w_up, &up}};
        matmul_many(x, tasks);
        if (act == Glu::Silu)
            swiglu(hidden, up, hidden);
        else
            geglu(hidden, up, hidden);
    }

    // Fused attention.
    //  q:       F32 [head_dim, n_head, n_tokens]
    //  k, v:    caches of F32, F16 or Q8_0 rows, shape [head_dim, n_head_kv, n_cells]:
    //           cell c of KV head h is row (h, c), at any byte strides of heads and cells
    //           (a contiguous tensor has a cell's heads adjacent; the KV cache's view has a
    //           head's cells adjacent).
    //  positions[t]: position of token t. kv_positions (optional, n_kv entries): position
    //           held by each cell; negative = empty cell (masked). Empty span: cell c
    //           holds position c.
    //  out:     F32 [head_dim * n_head, n_tokens].
    // Logits are Q·K in f32 (K in its cache precision, as ggml's f16 cache), times scale,
    // soft-capped, masked (causal, sliding window), then an f32 softmax weights V.
    // GQA: query head h uses KV head h / (n_head / n_head_kv).
    virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           std::span<const int32_t> positions, const AttentionParams& p,
                           Tensor& out, std::span<const int32_t> kv_positions = {}) = 0;

    // Runs fn(thread_index, n_threads) on every thread of the backend's pool and waits.
    // For ops the backend does not have; split work by index so results do not depend
    // on the thread count.
    virtual void parallel(const std::function<void(int, int)>& fn) = 0;
};

struct CpuBackendOptions {
    CpuPath path = CpuPath::Auto;
    // Offer packed weight layouts where the path has kernels for them (matmul_layout).
    bool repack = true;
    // Prompts (more than 63 rows) multiply F16 weights as bf16 where the path can
    // (AVX-512 BF16): weights and activations are rounded to bf16, keeping 8 of their 11
    // significant bits, for twice the product rate; decode stays exact. Off by default, as
    // the rounding changes the results (the weights in memory stay the file's).
    bool f16_as_bf16 = false;
};

// n_threads <= 0: one per hardware thread.
std::unique_ptr<Backend> make_cpu_backend(int n_threads, CpuBackendOptions options = {});

// The path Auto resolves to on this machine (after LCX_CPU), and whether a path can run.
CpuPath cpu_best_path();
bool cpu_path_supported(CpuPath path);
const char* cpu_path_name(CpuPath path);

}  // namespace lcx
