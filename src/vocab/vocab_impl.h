// Internal state of a Vocab, shared by the tokenizer implementations. Not part of the
// public API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vocab/pre_tokenizer.h"
#include "vocab/vocab.h"

namespace lcx {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct VocabEntry {
    std::string text;
    float score = 0.0f;
    uint32_t attr = kTokenAttrNormal;
};

struct Vocab::Impl {
    VocabType type = VocabType::Spm;
    std::string model;
    std::string pre;
    PreTypeInfo pre_info;

    std::vector<VocabEntry> tokens;
    TokenMap token_to_id;
    size_t max_token_len = 0;

    // BPE: merge ranks keyed by merge_key(left, right).
    TokenMap bpe_ranks;
    std::unique_ptr<PreTokenizer> pre_tokenizer;

    int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken;
    int32_t unk = kNoToken, sep = kNoToken, pad = kNoToken, mask = kNoToken;
    int32_t nl = kNoToken;
    bool add_bos = false, add_eos = false, add_sep = false;
    bool add_space_prefix = false;
    bool remove_extra_whitespaces = false;
    bool clean_spaces = false;
    bool ignore_merges = false;
    // SPM: true when no token has U+2581 right after another character, so merges never
    // cross the start of a "▁word" and words can be tokenized (and cached) one by one.
    bool spm_words_independent = false;

    std::vector<int32_t> eog;             // sorted
    std::vector<int32_t> special_tokens;  // split out of text before tokenizing, longest first
    std::vector<std::string> pieces;      // token_to_piece(id, special = true)

    int32_t find(std::string_view text) const {
        const auto it = token_to_id.find(text);
        return it == token_to_id.end() ? kNoToken : it->second;
    }
    // SPM/WPM byte fallback: "<0xNN>", else the byte itself, else kNoToken.
    int32_t byte_to_token(uint8_t byte) const;

    static void merge_key(std::string& key, std::string_view left, std::string_view right) {
        // A length prefix keeps the key unambiguous whatever bytes the tokens contain.
        key.clear();
        const auto n = uint32_t(left.size());
        key.append(reinterpret_cast<const char*>(&n), sizeof(n));
        key.append(left);
        key.append(right);
    }
};

// The tokenizers proper, each on one fragment of plain text (special tokens already
// split out). They append to `out`.
void spm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out);
// The same, split into words first when that cannot change the result; repeated words
// are looked up in `cache`.
void spm_tokenize_words(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out,
                        std::unordered_map<std::string, std::vector<int32_t>>& cache);
void wpm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out);

// BPE keeps a cache of words already seen within one tokenize() call.
class BpeSession {
  public:
    explicit BpeSession(const Vocab::Impl& v) : v_(v) {}
    void tokenize(std::string_view text, std::vector<int32_t>& out);

  private:
    void encode_word(const std::string& word, std::vector<int32_t>& out);

    const Vocab::Impl& v_;
    std::unordered_map<std::string, std::vector<int32_t>> cache_;
    std::string key_;
};

}  // namespace lcx
