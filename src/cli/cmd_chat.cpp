// `llama-cxx chat`: an interactive conversation using the model's chat template. The
// conversation stays in the KV cache between turns: each turn only the tokens that differ
// from what the cache holds are evaluated. Ctrl-C stops the current answer; EOF
// (Ctrl-D) ends the chat.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "common/log.h"
#include "runtime/chat_template.h"
#include "runtime/generator.h"

namespace lcx::cli {

namespace {

std::atomic<bool> g_interrupt{false};
std::atomic<bool> g_generating{false};

extern "C" void on_sigint(int) {
    if (g_generating.load()) {
        g_interrupt.store(true);
        return;
    }
    // At the input prompt Ctrl-C leaves, as in a shell.
    const char nl = '\n';
    (void)!write(STDERR_FILENO, &nl, 1);
    _exit(130);
}

struct ChatArgs {
    ModelOptions model;
    SamplerParams sampling;
    std::string system;
    std::string template_name;
    int32_t n_predict = -1;
};

void run_chat(const ChatArgs& a) {
    LoadedModel lm = load_model(a.model, /*allow_bundled=*/true, 4096);
    const ChatTemplate tmpl =
        a.template_name.empty()
            ? ChatTemplate::detect(
                  lm.model->file().get_string("tokenizer.chat_template").value_or(""))
            : ChatTemplate::from_name(a.template_name);
    log::info("chat template: %s (Ctrl-C stops an answer, Ctrl-D exits)",
              std::string(tmpl.name()).c_str());

    std::vector<ChatMessage> messages;
    if (!a.system.empty()) messages.push_back({"system", a.system});
    std::vector<int32_t> cached;  // what sequence 0 of the KV cache holds
    Sampler sampler(a.sampling);
    GenerateOptions opt;
    opt.n_predict = a.n_predict;
    opt.interrupt = &g_interrupt;
    // Without chat markup the model would go on to write the user's next line itself.
    if (tmpl.format() == ChatFormat::Plain) opt.stop = {"\nUser:"};
    std::signal(SIGINT, on_sigint);
    const bool interactive = isatty(STDIN_FILENO) != 0;

    std::string line;
    for (;;) {
        if (interactive) std::fputs("> ", stderr);
        if (!std::getline(std::cin, line)) break;
        if (line.empty()) continue;
        messages.push_back({"user", line});
        const std::string text = tmpl.apply(messages, /*add_assistant=*/true);
        const auto tokens = lm.vocab.tokenize(text, /*add_special=*/true, /*parse_special=*/true);
        // Keep the longest common prefix with the cache; evaluate at least one token so
        // there are logits to sample from.
        size_t common = 0;
        while (common < cached.size() && common < tokens.size() && cached[common] == tokens[common])
            ++common;
        common = std::min(common, tokens.size() - 1);
        lm.ctx->truncate(0, int32_t(common));
        cached.resize(common);
        const std::span<const int32_t> fresh(tokens.data() + common, tokens.size() - common);

        g_interrupt.store(false);
        g_generating.store(true);
        GenerateResult r;
        try {
            r = generate(*lm.ctx, lm.vocab, sampler, fresh, opt, [](std::string_view piece) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            });
        } catch (...) {
            g_generating.store(false);
            throw;
        }
        g_generating.store(false);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        cached.insert(cached.end(), r.evaluated.begin(), r.evaluated.end());
        messages.push_back({"assistant", r.text});
        if (r.reason == StopReason::ContextFull)
            throw Error("the context is full (" + std::to_string(lm.ctx->n_ctx()) +
                        " tokens; raise -c — context shifting is not implemented)");
        log::debug("%s", speed_summary(r).c_str());
    }
    std::signal(SIGINT, SIG_DFL);
}

}  // namespace

void add_chat_command(CLI::App& app) {
    auto args = std::make_shared<ChatArgs>();
    auto* cmd = app.add_subcommand(
        "chat",
        "Interactive chat with the model's chat template (without -m: bundled stories260K)");
    add_model_options(cmd, args->model, /*bundled_default=*/true);
    cmd->add_option("--system", args->system, "system message");
    cmd->add_option("--chat-template", args->template_name,
                    "force a built-in template: " + ChatTemplate::known_names());
    cmd->add_option("-n,--n-predict", args->n_predict, "token limit per answer (-1: none)");
    add_sampling_options(cmd, args->sampling);
    cmd->callback([args] { run_chat(*args); });
}

}  // namespace lcx::cli
