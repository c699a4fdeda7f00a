// `llama-cxx generate`: complete a prompt, streaming the text to stdout.
//
// Ctrl-C stops the generation cleanly: the text so far is ended with a newline, the
// summary goes to stderr (stop: interrupted) and the exit status is 130, as llama.cpp's
// CLI does. A second Ctrl-C exits at once. While a prompt longer than one batch is read,
// stderr shows its progress when it is a terminal.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "runtime/generator.h"

namespace lcx::cli {

namespace {

std::atomic<bool> g_interrupt{false};

extern "C" void on_generate_sigint(int) {
    if (g_interrupt.exchange(true)) _exit(130);  // the second Ctrl-C does not wait
}

// Restores the default SIGINT action however the command ends.
struct SigintGuard {
    SigintGuard() {
        g_interrupt.store(false);
        std::signal(SIGINT, on_generate_sigint);
    }
    ~SigintGuard() { std::signal(SIGINT, SIG_DFL); }
    SigintGuard(const SigintGuard&) = delete;
    SigintGuard& operator=(const SigintGuard&) = delete;
};

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
    opt.interrupt = &g_interrupt;
    // Progress only where someone watches, and only for prompts read in several passes.
    const bool show_progress = stderr_is_tty() && int64_t(tokens.size()) > lm.ctx->n_batch();
    // The prompt is echoed once it has been read, so the progress line never shares a
    // terminal line with it.
    opt.on_prompt_progress = [&](int64_t done, int64_t total) {
        if (show_progress) {
            std::fprintf(stderr, "\rreading the prompt: %lld/%lld tokens",
                         static_cast<long long>(done), static_cast<long long>(total));
            if (done == total) std::fputs("\r\033[K", stderr);
            std::fflush(stderr);
        }
        if (done == total && !a.no_display_prompt) {
            std::fputs(prompt.c_str(), stdout);
            std::fflush(stdout);
        }
    };
    GenerateResult r;
    {
        SigintGuard guard;
        r = generate(*lm.ctx, lm.vocab, sampler, tokens, opt, [](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        });
    }
    if (show_progress && int64_t(r.evaluated.size()) < int64_t(tokens.size()))
        std::fputs("\r\033[K", stderr);  // interrupted while reading the prompt
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "%s | stop: %s | seed %llu\n", speed_summary(r).c_str(),
                 stop_reason_name(r.reason), static_cast<unsigned long long>(sampler.seed()));
    if (r.reason == StopReason::Interrupted) throw CLI::RuntimeError(130);
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
