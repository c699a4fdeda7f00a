// The checks of tokenizer_fuzz, shared with the replay test in tests/vocab: the first
// byte picks the vocabulary (of `vocabs`, by index) and the flags, the rest is the text.
// Tokenizing never throws for any bytes, gives ids inside the vocabulary and is
// deterministic, and the ids detokenize (whole and piece by piece) without error.
// Returns an empty string when all holds, else what failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vocab/vocab.h"

namespace lcx::fuzz {

inline std::string check_tokenizer(const std::vector<Vocab>& vocabs, const uint8_t* data,
                                   size_t size) {
    if (size == 0 || vocabs.empty()) return {};
    const uint8_t mode = data[0];
    const Vocab& vocab = vocabs[mode % vocabs.size()];
    const bool add_special = mode & 4;
    const bool parse_special = mode & 8;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    const std::vector<int32_t> ids = vocab.tokenize(text, add_special, parse_special);
    for (int32_t id : ids)
        if (id < 0 || id >= vocab.n_tokens())
            return "token id " + std::to_string(id) + " out of range";
    if (vocab.tokenize(text, add_special, parse_special) != ids)
        return "tokenizing twice gave different ids";
    size_t n =
        vocab.detokenize(ids, /*remove_special=*/mode & 16, /*unparse_special=*/mode & 32).size();
    for (int32_t id : ids) n += vocab.token_to_piece(id, mode & 64).size();
    (void)n;
    return {};
}

// The vocabularies tokenizer_fuzz uses, relative to the source tree.
inline const char* const kTokenizerFuzzVocabs[] = {"models/stories260K.gguf",
                                                   "tests/data/vocab/ggml-vocab-gpt-2.gguf",
                                                   "tests/data/vocab/ggml-vocab-bert-bge.gguf"};

}  // namespace lcx::fuzz
