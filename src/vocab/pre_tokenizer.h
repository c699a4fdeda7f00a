// BPE pre-tokenization: splits text into words with a chain of regexes chosen by
// `tokenizer.ggml.pre`, as llama.cpp does. Each regex refines the pieces left by the
// previous one, and the text between matches is kept as pieces of its own, so the words
// always cover the whole text.
//
// The regexes run on PCRE2 with UTF and UCP, so \p{L}, \p{N}, ... follow Unicode for
// every code point. \s is taken as the White_Space property (llama.cpp's definition).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lcx {

enum class PreType {
    Default,
    Llama3,
    DeepseekLlm,
    DeepseekCoder,
    Deepseek3,
    Falcon,
    Mpt,
    Starcoder,
    Gpt2,
    Refact,
    CommandR,
    Stablelm2,
    Qwen2,
    Olmo,
    Dbrx,
    Smaug,
    Poro,
    Chatglm4,
    Viking,
    Jais,
    Tekken,
    Smollm,
    Codeshell,
    Bloom,
    Gpt3Finnish,
    Exaone,
    Chameleon,
    Minerva,
    Gpt4o,
    Superbpe,
    Trillion,
    Bailingmoe,
    SeedCoder,
};

// What a `tokenizer.ggml.pre` name selects, with the flags llama.cpp sets alongside.
struct PreTypeInfo {
    PreType type = PreType::Default;
    bool known = true;           // false: unknown name, gpt-2's rules used instead
    bool clean_spaces = true;    // detokenize removes " ," " ." ... (clean_up_tokenization_spaces)
    bool ignore_merges = false;  // a pre-token found whole in the vocabulary is one token
    bool add_bos = false;        // default for add_bos_token
};
PreTypeInfo resolve_pre_type(std::string_view name);

class PreTokenizer {
  public:
    explicit PreTokenizer(PreType type);
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // Splits well-formed UTF-8 `text` into consecutive, non-empty words that together
    // make up the whole text. The views point into `text`.
    std::vector<std::string_view> split(std::string_view text) const;

    const std::vector<std::string>& regexes() const { return sources_; }

  private:
    struct Compiled;
    std::vector<std::string> sources_;
    std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace lcx
