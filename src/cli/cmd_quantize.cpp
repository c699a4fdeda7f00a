// `llama-cxx quantize IN OUT TYPE [--pure] [-t N]`: llama-quantize's model conversion.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "model/quantize_model.h"

namespace lcx::cli {

namespace {

struct QuantizeArgs {
    std::string in_path;
    std::string out_path;
    std::string type;
    bool pure = false;
    int n_threads = 1;
};

void run_quantize(const QuantizeArgs& a) {
    const auto r = quantize_model(a.in_path, a.out_path, a.type, a.pure, a.n_threads);
    std::fprintf(stderr,
                 "quantized %s -> %s (%s%s): %d tensors, %d converted, %d fallbacks, "
                 "%.2f MiB -> %.2f MiB\n",
                 a.in_path.c_str(), a.out_path.c_str(), a.type.c_str(), a.pure ? ", pure" : "",
                 r.n_tensors, r.n_converted, r.n_fallback, double(r.bytes_in) / (1 << 20),
                 double(r.bytes_out) / (1 << 20));
}

}  // namespace

void add_quantize_command(CLI::App& app) {
    auto args = std::make_shared<QuantizeArgs>();
    std::string types;
    for (const auto& n : quantize_mix_names()) types += (types.empty() ? "" : ", ") + n;
    auto* cmd = app.add_subcommand("quantize", "Quantize a GGUF model (llama-quantize's mixes)");
    cmd->add_option("input", args->in_path, "input GGUF file")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("output", args->out_path, "output GGUF file")->required();
    cmd->add_option("type", args->type, "quantization type: " + types)->required();
    cmd->add_flag("--pure", args->pure,
                  "every quantizable tensor gets TYPE (no per-role mix; row-length fallbacks "
                  "still apply)");
    cmd->add_option("-t,--threads", args->n_threads, "threads")->check(CLI::PositiveNumber);
    cmd->callback([args] { run_quantize(*args); });
}

}  // namespace lcx::cli
