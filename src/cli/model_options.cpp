#include "cli/model_options.h"

#include <unistd.h>

#include <algorithm>

#include "common/error.h"
#include "common/log.h"
#include "gguf/gguf_file.h"
#include "runtime/kv_cache.h"

extern "C" const unsigned char lcx_bundled_model_begin[];
extern "C" const unsigned char lcx_bundled_model_end[];

namespace lcx::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o, bool bundled_default) {
    cmd->add_option("-m,--model", o.model_path,
                    bundled_default ? "GGUF model file (default: the bundled stories260K model)"
                                    : "GGUF model file")
        ->check(CLI::ExistingFile);
    cmd->add_option("-t,--threads", o.threads, "threads (default: all cores)");
    cmd->add_option("-c,--ctx-size", o.n_ctx,
                    "context size in tokens (default: 4096, at most the model's training "
                    "context). Context shifting is not implemented: a request that does not "
                    "fit is an error");
    cmd->add_option("-b,--batch-size", o.n_batch, "tokens per forward pass (default: 512)");
    cmd->add_option("--ctk,--cache-type-k", o.cache_type_k, "K cache type: f16, f32, q8_0");
    cmd->add_option("--ctv,--cache-type-v", o.cache_type_v, "V cache type: f16, f32, q8_0");
    cmd->add_option("--cache-type", o.cache_type, "K and V cache type: f16, f32, q8_0");
    add_cpu_options(cmd, o.cpu);
}

void add_cpu_options(CLI::App* cmd, CpuOptions& o) {
    cmd->add_flag("--no-repack", o.no_repack,
                  "keep every weight in the file's layout, mapped without a copy (by default "
                  "Q4_0, Q8_0, Q4_K and Q5_K weights are interleaved 8 rows at a time at load, "
                  "for faster products)");
    cmd->add_flag("--f16-as-bf16", o.f16_as_bf16,
                  "on CPUs with AVX-512 BF16, multiply F16 weights in bf16 in prompts (more "
                  "than 63 tokens at once): about twice as fast, but weights and activations "
                  "keep 8 of their 11 significant bits there, so results change slightly; "
                  "decode stays exact and the weights stay mapped from the file");
}

CpuBackendOptions CpuOptions::backend_options() const {
    CpuBackendOptions bo;
    bo.repack = !no_repack;
    bo.f16_as_bf16 = f16_as_bf16;
    return bo;
}

void add_sampling_options(CLI::App* cmd, SamplerParams& p) {
    cmd->add_option("--temp", p.temperature, "temperature; 0 or less is greedy (default: 0.8)");
    cmd->add_option("--top-k", p.top_k, "top-k sampling, 0 = off (default: 40)");
    cmd->add_option("--top-p", p.top_p, "top-p sampling, 1.0 = off (default: 0.95)");
    cmd->add_option("--min-p", p.min_p, "min-p sampling, 0.0 = off (default: 0.05)");
    cmd->add_option("--typical", p.typical_p, "locally typical sampling, 1.0 = off (default: 1.0)");
    cmd->add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty, 1.0 = off");
    cmd->add_option("--repeat-last-n", p.penalty_last_n,
                    "tokens the penalties look back on, 0 = off, -1 = context (default: 64)");
    cmd->add_option("--presence-penalty", p.presence_penalty, "presence penalty, 0 = off");
    cmd->add_option("--frequency-penalty", p.frequency_penalty, "frequency penalty, 0 = off");
    cmd->add_option("-s,--seed", p.seed, "random seed (default: random)");
}

LoadedModel load_model(const ModelOptions& o, bool allow_bundled, int64_t default_ctx) {
    LoadedModel lm;
    lm.backend = make_cpu_backend(o.threads, o.cpu.backend_options());
    if (o.model_path.empty()) {
        check(allow_bundled, "no model given (use -m MODEL.gguf)");
        const std::span<const uint8_t> bytes(
            lcx_bundled_model_begin, size_t(lcx_bundled_model_end - lcx_bundled_model_begin));
        lm.model = Model::from_gguf(
            gguf::GgufFile::from_memory(bytes, /*copy=*/false, "bundled stories260K"),
            lm.backend.get());
        lm.bundled = true;
    } else {
        lm.model = Model::load(o.model_path, lm.backend.get());
    }
    lm.vocab = Vocab::from_gguf(lm.model->file());
    check(lm.vocab.n_tokens() == lm.model->hparams().n_vocab,
          "the vocabulary has " + std::to_string(lm.vocab.n_tokens()) +
              " tokens but the embedding has " + std::to_string(lm.model->hparams().n_vocab) +
              " rows");
    check(o.n_ctx >= 0, "the context size (-c) must not be negative");
    check(o.n_batch > 0, "the batch size (-b) must be positive");

    ContextParams cp;
    const int64_t train = lm.model->hparams().n_ctx_train;
    cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : (default_ctx > 0 ? std::min(default_ctx, train) : train);
    cp.n_batch = o.n_batch;
    cp.type_k = parse_cache_type(o.cache_type.empty() ? o.cache_type_k : o.cache_type);
    cp.type_v = parse_cache_type(o.cache_type.empty() ? o.cache_type_v : o.cache_type);
    if (cp.n_ctx > train)
        log::warn("context size %lld is larger than the model's training context %lld",
                  static_cast<long long>(cp.n_ctx), static_cast<long long>(train));
    lm.ctx = std::make_unique<Context>(lm.model, *lm.backend, cp);
    return lm;
}

bool stderr_is_tty() { return isatty(STDERR_FILENO) != 0; }

}  // namespace lcx::cli
