// `llama-cxx perplexity`: llama.cpp's perplexity over a text file.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "runtime/perplexity.h"

namespace lcx::cli {

namespace {

struct PerplexityArgs {
    ModelOptions model;
    std::string text_file;
};

void run_perplexity(PerplexityArgs a) {
    if (a.model.n_ctx == 0) a.model.n_ctx = 512;  // llama-perplexity's default
    LoadedModel lm = load_model(a.model, /*allow_bundled=*/false, 0);
    std::ifstream in(a.text_file, std::ios::binary);
    check(in.good(), "cannot read '" + a.text_file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    const auto tokens = lm.vocab.tokenize(ss.str(), /*add_special=*/true, /*parse_special=*/false);
    const bool tty = stderr_is_tty();
    const PerplexityResult r = compute_perplexity(
        *lm.ctx, tokens, a.model.n_ctx, lm.vocab.bos(), [tty](int64_t done, int64_t n, double ppl) {
            if (tty)
                std::fprintf(stderr, "\r[%lld/%lld] PPL so far %.4f", static_cast<long long>(done),
                             static_cast<long long>(n), ppl);
        });
    if (tty) std::fputc('\n', stderr);
    std::fprintf(stderr, "%lld chunks of %lld tokens, %lld tokens scored\n",
                 static_cast<long long>(r.n_chunks), static_cast<long long>(a.model.n_ctx),
                 static_cast<long long>(r.n_scored));
    std::printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_error);
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
    auto args = std::make_shared<PerplexityArgs>();
    auto* cmd = app.add_subcommand("perplexity",
                                   "Perplexity of a model over a text file (llama.cpp's method)");
    add_model_options(cmd, args->model, /*bundled_default=*/false);
    cmd->get_option("--model")->required();
    cmd->add_option("-f,--file", args->text_file, "text file")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->callback([args] { run_perplexity(*args); });
}

}  // namespace lcx::cli
