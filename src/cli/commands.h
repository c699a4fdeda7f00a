// Each subcommand of `llama-cxx` lives in its own cmd_<name>.cpp and registers itself
// here. A handler returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace lcx::cli {

void add_info_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_make_model_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace lcx::cli
