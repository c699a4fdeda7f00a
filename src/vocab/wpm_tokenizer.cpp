// BERT WordPiece as llama.cpp runs it. Preprocessing: decompose each code point to the
// first code point of its canonical decomposition (which drops accents), lowercase,
// split on whitespace, drop controls, and make every punctuation character, ASCII
// symbol and CJK ideograph a word of its own. Each word, prefixed with U+2581 (how
// llama.cpp's converter marks word starts), is then covered greedily by the longest
// vocabulary tokens; a word that cannot be covered becomes [UNK].
#include "vocab/unicode.h"
#include "vocab/vocab_impl.h"

namespace lcx {

namespace {

// BERT's definition of a "Chinese character" (including its 0x2B920 quirk).
bool is_chinese_char(uint32_t c) {
    return (c >= 0x04E00 && c <= 0x09FFF) || (c >= 0x03400 && c <= 0x04DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0x0F900 && c <= 0x0FAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::vector<std::string> preprocess(std::string_view text) {
    std::vector<std::string> words(1);
    for (uint32_t cpt : unicode::decode_utf8(text)) {
        cpt = unicode::nfd_first(cpt);
        const auto flags = unicode::cpt_flags(cpt);
        if (flags.is_whitespace) {
            if (!words.back().empty()) words.emplace_back();
            continue;
        }
        if (cpt == 0 || cpt == unicode::kReplacement || flags.is_control) continue;
        std::string s;
        unicode::append_utf8(s, unicode::to_lower(cpt));
        if (flags.is_punctuation || (cpt < 0x7F && flags.is_symbol) || is_chinese_char(cpt)) {
            if (!words.back().empty()) words.emplace_back();
            words.back() = std::move(s);
            words.emplace_back();
        } else {
            words.back() += s;
        }
    }
    if (words.back().empty()) words.pop_back();
    return words;
}

}  // namespace

void wpm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out) {
    for (const std::string& word : preprocess(text)) {
        const std::string w = "\xE2\x96\x81" + word;
        const size_t n = w.size();
        const size_t start_size = out.size();
        for (size_t i = 0; i < n; ++i) {
            bool match = false;
            for (size_t j = std::min(n, i + v.max_token_len + 1); j > i; --j) {
                const int32_t id = v.find(std::string_view(w).substr(i, j - i));
                if (id != Vocab::kNoToken) {
                    out.push_back(id);
                    match = true;
                    i = j - 1;
                    break;
                }
            }
            if (!match) {
                out.resize(start_size);  // the whole word is unknown
                break;
            }
        }
        if (out.size() == start_size && v.unk != Vocab::kNoToken) out.push_back(v.unk);
    }
}

}  // namespace lcx
