// llama-cxx: one binary, many subcommands.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"
#include "common/log.h"

int main(int argc, char** argv) {
    CLI::App app{"llama-cxx " LCX_VERSION " - LLM inference on GGUF models"};
    app.require_subcommand(1);
    app.set_version_flag("--version", LCX_VERSION);
    lcx::cli::add_info_command(app);
    lcx::cli::add_tokenize_command(app);
    lcx::cli::add_generate_command(app);
    lcx::cli::add_chat_command(app);
    lcx::cli::add_logits_command(app);
    lcx::cli::add_perplexity_command(app);
    lcx::cli::add_quantize_command(app);
    lcx::cli::add_serve_command(app);
    lcx::cli::add_make_model_command(app);
    lcx::cli::add_bench_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const lcx::Error& e) {
        lcx::log::error("%s", e.what());
        return 1;
    } catch (const std::exception& e) {
        lcx::log::error("%s", e.what());
        return 1;
    }
    return 0;
}
