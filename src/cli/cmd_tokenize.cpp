// `llama-cxx tokenize`: text to token ids with a model's vocabulary, printed either as
// one JSON array (--ids) or as one `id -> 'piece'` line per token, like llama.cpp's
// llama-tokenize.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "gguf/gguf_file.h"
#include "vocab/vocab.h"

namespace lcx::cli {

namespace {

struct TokenizeOptions {
    std::string model;
    std::string prompt;
    std::string file;
    bool from_stdin = false;
    bool ids_only = false;
    bool no_bos = false;
    bool no_parse_special = false;
};

std::string read_input(const TokenizeOptions& o, const CLI::App& cmd) {
    const int n_sources = int(cmd.count("--prompt") > 0) + int(!o.file.empty()) + int(o.from_stdin);
    check(n_sources == 1, "tokenize: give exactly one of -p TEXT, -f FILE or --stdin");
    if (cmd.count("--prompt")) return o.prompt;
    if (o.from_stdin) {
        return std::string(std::istreambuf_iterator<char>(std::cin), {});
    }
    std::ifstream in(o.file, std::ios::binary);
    check(in.good(), "tokenize: cannot open input file '" + o.file + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void run_tokenize(const TokenizeOptions& o, const CLI::App& cmd) {
    const std::string text = read_input(o, cmd);
    const Vocab vocab = Vocab::from_gguf(gguf::GgufFile::open(o.model));
    const auto ids = vocab.tokenize(text, /*add_special=*/!o.no_bos,
                                    /*parse_special=*/!o.no_parse_special);
    std::string out;
    if (o.ids_only) {
        out += '[';
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) out += ", ";
            out += std::to_string(ids[i]);
        }
        out += "]\n";
    } else {
        char buf[32];
        for (const int32_t id : ids) {
            std::snprintf(buf, sizeof(buf), "%6d -> '", id);
            out += buf;
            out += vocab.token_to_piece(id, /*special=*/true);
            out += "'\n";
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
    auto opts = std::make_shared<TokenizeOptions>();
    auto* cmd = app.add_subcommand("tokenize", "Tokenize text with a model's vocabulary");
    cmd->add_option("-m,--model", opts->model, "GGUF model (or vocabulary) file")->required();
    cmd->add_option("-p,--prompt", opts->prompt, "text to tokenize");
    cmd->add_option("-f,--file", opts->file, "read the text from a file");
    cmd->add_flag("--stdin", opts->from_stdin, "read the text from standard input");
    cmd->add_flag("--ids", opts->ids_only, "print only the ids, as one JSON array");
    cmd->add_flag("--no-bos", opts->no_bos, "do not add BOS/EOS even if the model asks for it");
    cmd->add_flag("--no-parse-special", opts->no_parse_special,
                  "treat the text of special tokens (e.g. <|im_end|>) as plain text");
    cmd->callback([opts, cmd] { run_tokenize(*opts, *cmd); });
}

}  // namespace lcx::cli
