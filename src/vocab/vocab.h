// A model's vocabulary and tokenizer, read from GGUF metadata (`tokenizer.ggml.*`).
//
// Tokenization follows llama.cpp (commit c392e509) token for token:
//   - SPM ("llama"): score-driven bigram merging over the whole fragment, spaces escaped
//     to U+2581, a leading space added (add_space_prefix), byte fallback `<0xNN>`.
//   - BPE ("gpt2"): byte-level BPE with merge ranks; the pre-tokenizer regexes are
//     chosen by `tokenizer.ggml.pre` (gpt-2, llama-bpe, qwen2, deepseek-*, ...).
//   - WPM ("bert"): BERT WordPiece with llama.cpp's normalization and splitting.
// Special tokens (control, user-defined, unknown) are split out of the text first:
// control and unknown tokens only when parse_special is true, user-defined ones always.
//
// A Vocab is immutable after from_gguf() and cheap to copy (shared state); all const
// methods are safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lcx::gguf {
class GgufFile;
}

namespace lcx {

enum class VocabType { Spm, Bpe, Wpm };

// Per-token attributes, a bit set as in llama.cpp (token_type in GGUF maps to one bit;
// LSTRIP/RSTRIP come from model-specific rules).
enum TokenAttr : uint32_t {
    kTokenAttrUndefined = 0,
    kTokenAttrUnknown = 1u << 0,
    kTokenAttrUnused = 1u << 1,
    kTokenAttrNormal = 1u << 2,
    kTokenAttrControl = 1u << 3,
    kTokenAttrUserDefined = 1u << 4,
    kTokenAttrByte = 1u << 5,
    kTokenAttrNormalized = 1u << 6,
    kTokenAttrLstrip = 1u << 7,
    kTokenAttrRstrip = 1u << 8,
    kTokenAttrSingleWord = 1u << 9,
};

class Vocab {
  public:
    static constexpr int32_t kNoToken = -1;

    // Reads the vocabulary from a GGUF file's metadata. Throws lcx::Error naming the key
    // when the metadata is missing, mistyped or inconsistent.
    static Vocab from_gguf(const gguf::GgufFile& file);

    VocabType type() const;
    const std::string& model_name() const;  // tokenizer.ggml.model
    const std::string& pre_name() const;    // tokenizer.ggml.pre ("" when absent)
    int32_t n_tokens() const;

    // Text to token ids. add_special adds BOS/EOS (and SEP for WPM) as the model asks;
    // parse_special turns the text of control tokens ("<|im_end|>") into those tokens.
    // Invalid UTF-8 never throws: SPM falls back to byte tokens for the raw bytes; BPE
    // and WPM see each invalid byte as U+FFFD (as llama.cpp does).
    std::vector<int32_t> tokenize(std::string_view text, bool add_special = true,
                                  bool parse_special = false) const;

    // The bytes one token stands for (SPM's U+2581 back to ' ', BPE's byte mapping
    // undone, <0xNN> to that byte). Control/unknown tokens give "" unless `special`.
    // A single piece may be an incomplete UTF-8 sequence. Throws for ids out of range.
    std::string token_to_piece(int32_t id, bool special = true) const;

    // Whole sequence to text, as llama.cpp's llama_detokenize: the SPM leading space is
    // removed, remove_special drops a leading BOS / trailing EOS the model adds, and
    // unparse_special renders control tokens as their text. Throws for ids out of range.
    std::string detokenize(std::span<const int32_t> ids, bool remove_special = false,
                           bool unparse_special = false) const;

    // End-of-generation: eos, eot, eom and tokens recognised by their text.
    bool is_eog(int32_t id) const;
    const std::vector<int32_t>& eog_ids() const;  // sorted

    // Special token ids; kNoToken when the vocabulary has none.
    int32_t bos() const;
    int32_t eos() const;
    int32_t eot() const;
    int32_t eom() const;
    int32_t unk() const;
    int32_t sep() const;
    int32_t pad() const;
    int32_t mask() const;
    int32_t nl() const;  // the newline token
    bool add_bos() const;
    bool add_eos() const;
    bool add_sep() const;
    bool add_space_prefix() const;

    // Per-token data. Throw lcx::Error for ids out of range.
    const std::string& token_text(int32_t id) const;
    float token_score(int32_t id) const;
    uint32_t token_attr(int32_t id) const;  // TokenAttr bits
    bool is_control(int32_t id) const;
    bool is_byte(int32_t id) const;
    // The id whose text is exactly `text`, or kNoToken.
    int32_t text_to_token(std::string_view text) const;

    struct Impl;

  private:
    std::shared_ptr<const Impl> impl_;
};

}  // namespace lcx
