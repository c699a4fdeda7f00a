#include "cli/commands.h"

namespace lcx::cli {

void add_info_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("info", "Show the metadata and tensors of a GGUF file");
    (void)cmd;
}

}  // namespace lcx::cli
