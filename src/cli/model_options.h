// Flags shared by the commands that run a model (generate, chat, logits, perplexity):
// which model, threads, context and batch size, KV cache types, sampling. Loading turns
// them into a ready decode context; without -m the bundled stories260K model is used
// where a command allows it.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/sampler.h"
#include "vocab/vocab.h"

namespace lcx::cli {

// How the CPU backend stores and multiplies the weights (CpuBackendOptions).
struct CpuOptions {
    bool no_repack = false;    // keep every weight in the file's layout (zero-copy)
    bool f16_as_bf16 = false;  // prompts multiply F16 weights in bf16 (CpuBackendOptions)
    CpuBackendOptions backend_options() const;
};

struct ModelOptions {
    std::string model_path;
    int threads = 0;  // 0: all hardware threads
    int64_t n_ctx = 0;
    int64_t n_batch = 512;
    std::string cache_type_k = "f16";
    std::string cache_type_v = "f16";
    std::string cache_type;  // sets both
    CpuOptions cpu;
};

void add_model_options(CLI::App* cmd, ModelOptions& o, bool bundled_default);
void add_sampling_options(CLI::App* cmd, SamplerParams& p);
// --no-repack and --f16-as-bf16 (part of add_model_options; `bench` adds them alone).
void add_cpu_options(CLI::App* cmd, CpuOptions& o);

struct LoadedModel {
    std::shared_ptr<const Model> model;
    Vocab vocab;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Context> ctx;
    bool bundled = false;
};

// n_ctx 0 in the options means `default_ctx` (capped at the model's training context),
// or the training context when default_ctx is 0.
LoadedModel load_model(const ModelOptions& o, bool allow_bundled, int64_t default_ctx);

// True when stderr is a terminal (progress displays only then).
bool stderr_is_tty();

}  // namespace lcx::cli
