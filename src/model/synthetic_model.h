// Random-weight LLaMA models with the exact shapes of real ones, for speed measurements:
// a TinyLlama-1.1B or Llama-2-7B file reads and computes exactly like the real model,
// without downloading gigabytes of weights. Weights are drawn from a normal-like
// distribution (std 0.02 by default, as LLaMA initialisation), norms are 1.
//
// Files are written through the GGUF writer with bounded memory: the writer lays out the
// file (header, metadata, aligned zero-filled tensor data), then every tensor is filled in
// place chunk by chunk, so a 13.5 GB F16 7B model never needs 13.5 GB of RAM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/dtype.h"

namespace lcx {

struct SyntheticShape {
    std::string name;  // "tinyllama-1.1b", "llama2-7b", "tiny"
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t n_ff = 0;
    int64_t n_ctx = 0;
    int64_t n_vocab = 0;  // replaced by the vocabulary's size when one is given
    float norm_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
};

// Known shapes: tiny (tests), smollm-135m, tinyllama-1.1b, llama2-7b. Throws lcx::Error for
// others.
SyntheticShape synthetic_shape(std::string_view name);
std::vector<std::string> synthetic_shape_names();

struct SyntheticModelOptions {
    SyntheticShape shape;
    DType type = DType::F16;      // weight matrices: F32, F16 or BF16 (norms are always F32)
    uint64_t seed = 1;            // same seed, same file (independent of n_threads)
    float stddev = 0.02f;         // of the weight matrices
    std::filesystem::path vocab;  // GGUF whose tokenizer.* metadata is copied; empty: a
                                  // minimal built-in SPM vocabulary of n_vocab tokens
    int n_threads = 1;
};

struct SyntheticModelResult {
    int n_tensors = 0;
    int64_t n_params = 0;
    uint64_t n_bytes = 0;  // tensor data
};

// Writes the model to `out`. Throws lcx::Error on bad options or I/O failure.
SyntheticModelResult write_synthetic_model(const SyntheticModelOptions& opt,
                                           const std::filesystem::path& out);

}  // namespace lcx
