// `llama-cxx logits`: the top-K logits at every prompt position and an optional greedy
// continuation, as JSON in the shape of llama.cpp's golden files.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "runtime/prompt_logits.h"

namespace lcx::cli {

namespace {

struct LogitsArgs {
    ModelOptions model;
    std::string prompt;
    int top = 8;
    int greedy = 0;
    bool json = false;
};

// Six decimals, as llama.cpp's golden files: float noise beyond that means nothing.
double rounded(float x) { return std::round(double(x) * 1e6) / 1e6; }

void run_logits(const LogitsArgs& a) {
    check(a.top > 0, "--top must be positive");
    check(a.greedy >= 0, "--greedy must not be negative");
    LoadedModel lm = load_model(a.model, /*allow_bundled=*/true, 0);
    // As llama.cpp's golden files: BOS added, special tokens not parsed.
    const auto tokens = lm.vocab.tokenize(a.prompt, /*add_special=*/true, /*parse_special=*/false);
    check(!tokens.empty(), "the prompt gives no tokens");
    check(int64_t(tokens.size()) + a.greedy <= lm.ctx->n_ctx(),
          "prompt and greedy tokens (" + std::to_string(tokens.size() + size_t(a.greedy)) +
              ") do not fit the context of " + std::to_string(lm.ctx->n_ctx()) + " (raise -c)");
    const PromptLogits r = compute_prompt_logits(*lm.ctx, tokens, a.top, a.greedy);
    std::string greedy_text;
    for (int32_t t : r.greedy) greedy_text += lm.vocab.token_to_piece(t, /*special=*/false);

    if (a.json) {
        nlohmann::ordered_json j;
        j["model"] = lm.bundled ? std::string("stories260K.gguf")
                                : std::filesystem::path(a.model.model_path).filename().string();
        j["prompt"] = a.prompt;
        j["prompt_tokens"] = tokens;
        auto& top = j["top_logits"] = nlohmann::ordered_json::array();
        for (const auto& row : r.top) {
            auto jr = nlohmann::ordered_json::array();
            for (const auto& [id, logit] : row) jr.push_back({id, rounded(logit)});
            top.push_back(jr);
        }
        if (a.greedy > 0) {
            j["greedy"] = r.greedy;
            auto& margins = j["greedy_margins"] = nlohmann::ordered_json::array();
            for (float m : r.greedy_margins) margins.push_back(rounded(m));
            j["greedy_text"] = greedy_text;
        }
        std::printf("%s\n",
                    j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        return;
    }
    for (size_t pos = 0; pos < r.top.size(); ++pos) {
        std::printf("%4zu %-16s", pos, ("'" + lm.vocab.token_to_piece(tokens[pos]) + "'").c_str());
        for (const auto& [id, logit] : r.top[pos]) std::printf(" %5d:%9.4f", id, logit);
        std::printf("\n");
    }
    if (a.greedy > 0) std::printf("greedy: %s\n", greedy_text.c_str());
}

}  // namespace

void add_logits_command(CLI::App& app) {
    auto args = std::make_shared<LogitsArgs>();
    auto* cmd = app.add_subcommand("logits",
                                   "Top logits at every prompt position (and greedy continuation)");
    add_model_options(cmd, args->model, /*bundled_default=*/true);
    cmd->add_option("-p,--prompt", args->prompt, "prompt text")->required();
    cmd->add_option("--top", args->top, "logits per position (default: 8)");
    cmd->add_option("--greedy", args->greedy, "greedy tokens to generate after the prompt");
    cmd->add_flag("--json", args->json, "JSON output (the shape of llama.cpp's golden files)");
    cmd->callback([args] { run_logits(*args); });
}

}  // namespace lcx::cli
