#include "vocab/unicode.h"

#include <utf8proc.h>

#include <array>

namespace lcx::unicode {

namespace {

bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

// One step of llama.cpp's decoder: returns the code point and advances `i`, or returns
// U+FFFD and advances by one byte when the sequence is malformed.
uint32_t decode_one(std::string_view s, size_t& i) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    const size_t n = s.size();
    uint32_t cpt = kReplacement;
    size_t len = 1;
    if (!(b0 & 0x80)) {
        cpt = b0;
    } else if (!(b0 & 0x40)) {
        // stray continuation byte
    } else if (!(b0 & 0x20)) {
        if (i + 1 < n && is_cont(s[i + 1])) {
            cpt = ((b0 & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
            len = 2;
        }
    } else if (!(b0 & 0x10)) {
        if (i + 2 < n && is_cont(s[i + 1]) && is_cont(s[i + 2])) {
            cpt = ((b0 & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
            len = 3;
        }
    } else if (!(b0 & 0x08)) {
        if (i + 3 < n && is_cont(s[i + 1]) && is_cont(s[i + 2]) && is_cont(s[i + 3])) {
            cpt = ((b0 & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
                  (s[i + 3] & 0x3Fu);
            len = 4;
        }
    }
    // Not representable in well-formed UTF-8: treat like any other invalid input.
    if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) cpt = kReplacement;
    i += len;
    return cpt;
}

struct ByteMap {
    std::array<std::string, 256> text;
    ByteMap() {
        // Printable Latin-1 bytes map to themselves; the others, in order, to U+0100...
        std::array<bool, 256> direct{};
        for (int b = 0x21; b <= 0x7E; ++b) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) append_utf8(text[b], direct[b] ? uint32_t(b) : next++);
    }
};

const ByteMap& byte_map() {
    static const ByteMap map;
    return map;
}

}  // namespace

std::vector<uint32_t> decode_utf8(std::string_view text) {
    std::vector<uint32_t> out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) out.push_back(decode_one(text, i));
    return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
    if (cpt <= 0x7F) {
        out.push_back(char(cpt));
    } else if (cpt <= 0x7FF) {
        out.push_back(char(0xC0 | (cpt >> 6)));
        out.push_back(char(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0xFFFF) {
        out.push_back(char(0xE0 | (cpt >> 12)));
        out.push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cpt & 0x3F)));
    } else {
        out.push_back(char(0xF0 | ((cpt >> 18) & 0x07)));
        out.push_back(char(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cpt & 0x3F)));
    }
}

std::string encode_utf8(const std::vector<uint32_t>& cpts) {
    std::string out;
    out.reserve(cpts.size());
    for (uint32_t c : cpts) append_utf8(out, c);
    return out;
}

bool is_whitespace(uint32_t c) {
    // The Unicode White_Space property (stable since Unicode 6.3).
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

CptFlags cpt_flags(uint32_t cpt) {
    CptFlags f;
    f.is_whitespace = is_whitespace(cpt);
    if (cpt > 0x10FFFF) {
        f.is_undefined = true;
        return f;
    }
    switch (utf8proc_category(utf8proc_int32_t(cpt))) {
        case UTF8PROC_CATEGORY_CN:
            f.is_undefined = true;
            break;
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            f.is_letter = true;
            break;
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
            f.is_accent_mark = true;
            break;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            f.is_number = true;
            break;
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            f.is_punctuation = true;
            break;
        case UTF8PROC_CATEGORY_SM:
        case UTF8PROC_CATEGORY_SC:
        case UTF8PROC_CATEGORY_SK:
        case UTF8PROC_CATEGORY_SO:
            f.is_symbol = true;
            break;
        case UTF8PROC_CATEGORY_ZS:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
            f.is_separator = true;
            break;
        case UTF8PROC_CATEGORY_CC:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO:
            f.is_control = true;
            break;
    }
    return f;
}

uint32_t to_lower(uint32_t cpt) {
    if (cpt > 0x10FFFF) return cpt;
    return uint32_t(utf8proc_tolower(utf8proc_int32_t(cpt)));
}

uint32_t nfd_first(uint32_t cpt) {
    if (cpt < 0xC0 || cpt > 0x10FFFF) return cpt;  // nothing below U+00C0 decomposes
    utf8proc_int32_t buf[8];
    int last_boundclass = 0;
    const utf8proc_ssize_t n = utf8proc_decompose_char(utf8proc_int32_t(cpt), buf, 8,
                                                       UTF8PROC_DECOMPOSE, &last_boundclass);
    return n >= 1 ? uint32_t(buf[0]) : cpt;
}

const std::string& byte_to_text(uint8_t byte) { return byte_map().text[byte]; }

int byte_of(std::string_view utf8_char) {
    static const auto inverse = [] {
        // Mapped code points are all below U+0144: index by code point.
        std::array<int16_t, 0x144> inv;
        inv.fill(-1);
        for (int b = 0; b < 256; ++b) {
            const auto cpts = decode_utf8(byte_map().text[b]);
            inv[cpts[0]] = int16_t(b);
        }
        return inv;
    }();
    const auto cpts = decode_utf8(utf8_char);
    if (cpts.size() != 1 || cpts[0] >= inverse.size()) return -1;
    return inverse[cpts[0]];
}

}  // namespace lcx::unicode
