// libFuzzer target: arbitrary bytes through the tokenizers of stories260K's SPM, GPT-2's
// byte-level BPE and BGE's WordPiece vocabularies, with and without add_special and
// parse_special, then back through detokenize (checks in tokenizer_check.h). A failed
// check, an exception, a crash or a sanitizer report is a bug.
//
// The vocabularies are read from the source tree (LCX_SOURCE_DIR).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "tokenizer_check.h"
#include "vocab/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<lcx::Vocab> vocabs = [] {
        std::vector<lcx::Vocab> out;
        for (const char* rel : lcx::fuzz::kTokenizerFuzzVocabs)
            out.push_back(lcx::Vocab::from_gguf(
                lcx::gguf::GgufFile::open(std::string(LCX_SOURCE_DIR) + "/" + rel)));
        return out;
    }();
    const std::string failed = lcx::fuzz::check_tokenizer(vocabs, data, size);
    if (!failed.empty()) {
        std::fprintf(stderr, "tokenizer_fuzz: %s\n", failed.c_str());
        __builtin_trap();
    }
    return 0;
}
