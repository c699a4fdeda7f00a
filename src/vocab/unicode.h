// Unicode helpers the tokenizers share: UTF-8 decoding with llama.cpp's exact leniency
// (so invalid input splits the same way), general categories from utf8proc, and the
// GPT-2 byte <-> printable-character mapping of byte-level BPE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lcx::unicode {

constexpr uint32_t kReplacement = 0xFFFD;

// Length of a UTF-8 sequence from its first byte alone (1 for continuation bytes), as
// llama.cpp's unicode_len_utf8: the SPM tokenizer splits raw bytes this way.
inline size_t utf8_len(char lead) {
    static constexpr uint8_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLookup[static_cast<uint8_t>(lead) >> 4];
}

// Decodes UTF-8 the way llama.cpp does: a lead byte with the right number of
// continuation bytes is accepted (overlong forms included); anything else yields
// U+FFFD for that one byte. Surrogates and values above U+10FFFF, which cannot be
// re-encoded, also become U+FFFD.
std::vector<uint32_t> decode_utf8(std::string_view text);
void append_utf8(std::string& out, uint32_t cpt);
std::string encode_utf8(const std::vector<uint32_t>& cpts);

// Category classes as llama.cpp's unicode_cpt_flags uses them.
struct CptFlags {
    bool is_undefined = false;    // Cn
    bool is_number = false;       // N*
    bool is_letter = false;       // L*
    bool is_separator = false;    // Z*
    bool is_accent_mark = false;  // M*
    bool is_punctuation = false;  // P*
    bool is_symbol = false;       // S*
    bool is_control = false;      // Cc Cf Co Cs
    bool is_whitespace = false;   // the White_Space property
};
CptFlags cpt_flags(uint32_t cpt);
bool is_whitespace(uint32_t cpt);

// Simple (one code point) lowercase mapping.
uint32_t to_lower(uint32_t cpt);
// First code point of the canonical decomposition (llama.cpp's NFD table keeps only
// that one: "é" -> "e").
uint32_t nfd_first(uint32_t cpt);

// GPT-2's byte-level encoding: every byte maps to one printable code point, given here
// as its UTF-8 text; byte_of() inverts it (-1 for text that is no mapped character).
const std::string& byte_to_text(uint8_t byte);
int byte_of(std::string_view utf8_char);

}  // namespace lcx::unicode
