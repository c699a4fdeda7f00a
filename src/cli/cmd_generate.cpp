// `llama-cxx generate`: complete a prompt, streaming the text to stdout.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "runtime/generator.h"

namespace lcx::cli {

namespace {

struct GenerateArgs {
    ModelOptions model;
    SamplerParams sampling;
    std::string prompt;
    std::string prompt_file;
    int32_t n_predict = -1;
    std::vector<std::string> stop;
    bool no_display_prompt = false;
};

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    check(in.good(), "cannot read prompt file '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void run_generate(const GenerateArgs& a) {
    LoadedModel lm = load_model(a.model, /*allow_bundled=*/true, 4096);
    std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
    if (prompt.empty() && lm.bundled) prompt = "Once upon a time";
    const auto tokens = lm.vocab.tokenize(prompt, /*add_special=*/true, /*parse_special=*/true);
    check(!tokens.empty(), "the prompt gives no tokens (pass one with -p or -f)");
    check(int64_t(tokens.size()) <= lm.ctx->n_ctx(),
          "the prompt has " + std::to_string(tokens.size()) + " tokens but the context holds " +
              std::to_string(lm.ctx->n_ctx()) + " (raise -c)");

    Sampler sampler(a.sampling);
    GenerateOptions opt;
    opt.n_predict = a.n_predict;
    opt.stop = a.stop;
    if (!a.no_display_prompt) {
        std::fputs(prompt.c_str(), stdout);
        std::fflush(stdout);
    }
    const GenerateResult r =
        generate(*lm.ctx, lm.vocab, sampler, tokens, opt, [](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "%s | stop: %s | seed %llu\n", speed_summary(r).c_str(),
                 stop_reason_name(r.reason), static_cast<unsigned long long>(sampler.seed()));
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto args = std::make_shared<GenerateArgs>();
    auto* cmd = app.add_subcommand("generate",
                                   "Complete a prompt (without -m: the bundled stories260K model)");
    add_model_options(cmd, args->model, /*bundled_default=*/true);
    cmd->add_option("-p,--prompt", args->prompt, "prompt text");
    cmd->add_option("-f,--file", args->prompt_file, "read the prompt from a file")
        ->check(CLI::ExistingFile);
    cmd->add_option("-n,--n-predict", args->n_predict,
                    "tokens to generate, -1 = until end of text or a full context (default: -1)");
    cmd->add_option("-r,--reverse-prompt", args->stop, "stop when this text appears (repeatable)");
    cmd->add_flag("--no-display-prompt", args->no_display_prompt, "print only the completion");
    add_sampling_options(cmd, args->sampling);
    cmd->callback([args] { run_generate(*args); });
}

}  // namespace lcx::cli
