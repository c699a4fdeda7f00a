// `llama-cxx make-model --shape NAME [--vocab V.gguf] [--type F16] -o OUT.gguf`: a
// random-weight model with the exact shapes of a real one, for benchmarks.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "model/synthetic_model.h"

namespace lcx::cli {

namespace {

struct MakeModelArgs {
    std::string shape;
    std::string vocab;
    std::string type = "F16";
    std::string out;
    uint64_t seed = 1;
    float stddev = 0.02f;
    int n_threads = 2;
};

DType parse_type(const std::string& s) {
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
        const std::string_view n = dtype_name(t);
        if (s.size() == n.size() && std::equal(s.begin(), s.end(), n.begin(), [](char a, char b) {
                return std::toupper(static_cast<unsigned char>(a)) == b;
            }))
            return t;
    }
    throw Error(
        "--type must be F32, F16 or BF16 (use 'llama-cxx quantize' for other types), not '" + s +
        "'");
}

void run_make_model(const MakeModelArgs& a) {
    SyntheticModelOptions o;
    o.shape = synthetic_shape(a.shape);
    o.type = parse_type(a.type);
    o.seed = a.seed;
    o.stddev = a.stddev;
    o.vocab = a.vocab;
    o.n_threads = a.n_threads;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = write_synthetic_model(o, a.out);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr,
                 "wrote %s: %s shape, %s, %d tensors, %.3f B parameters, %.2f MiB in %.1f s\n",
                 a.out.c_str(), a.shape.c_str(), a.type.c_str(), r.n_tensors,
                 double(r.n_params) / 1e9, double(r.n_bytes) / (1 << 20), s);
}

}  // namespace

void add_make_model_command(CLI::App& app) {
    auto args = std::make_shared<MakeModelArgs>();
    std::string shapes;
    for (const auto& n : synthetic_shape_names()) shapes += (shapes.empty() ? "" : ", ") + n;
    auto* cmd = app.add_subcommand(
        "make-model", "Write a random-weight LLaMA model with a real model's shapes (benchmarks)");
    cmd->add_option("--shape", args->shape, "model shape: " + shapes)->required();
    cmd->add_option("--vocab", args->vocab,
                    "GGUF file whose tokenizer.* metadata is copied (sets the vocabulary size; "
                    "default: a built-in vocabulary of the shape's size)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--type", args->type, "weight type: F32, F16 (default) or BF16");
    cmd->add_option("-o,--output", args->out, "output GGUF file")->required();
    cmd->add_option("-s,--seed", args->seed, "random seed (default: 1)");
    cmd->add_option("--std", args->stddev, "standard deviation of the weights (default: 0.02)");
    cmd->add_option("-t,--threads", args->n_threads, "threads (default: 2)")
        ->check(CLI::PositiveNumber);
    cmd->callback([args] { run_make_model(*args); });
}

}  // namespace lcx::cli
