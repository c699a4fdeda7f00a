#include "vocab/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "common/error.h"
#include "common/log.h"
#include "gguf/gguf_file.h"
#include "vocab/unicode.h"
#include "vocab/vocab_impl.h"

namespace lcx {

using gguf::Value;

namespace {

constexpr std::string_view kSpaceEscape = "\xE2\x96\x81";  // U+2581

// GGUF token_type values.
uint32_t attr_from_type(int64_t type) {
    switch (type) {
        case 1:
            return kTokenAttrNormal;
        case 2:
            return kTokenAttrUnknown;
        case 3:
            return kTokenAttrControl;
        case 4:
            return kTokenAttrUserDefined;
        case 5:
            return kTokenAttrUnused;
        case 6:
            return kTokenAttrByte;
        default:
            return kTokenAttrUndefined;
    }
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out.append(to);
    }
    out.append(s, pos, std::string::npos);
    s.swap(out);
}

bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// A piece of input: either raw text still to tokenize or a special token already found.
struct Fragment {
    int32_t token;  // kNoToken for raw text
    size_t offset;
    size_t length;
};

const gguf::Array& require_array(const gguf::GgufFile& f, std::string_view key) {
    const gguf::Array* a = f.get_array(key);
    check(a != nullptr, f.path() + ": missing vocabulary key '" + std::string(key) + "'");
    return *a;
}

// BPE detokenization clean-up (clean_up_tokenization_spaces), llama.cpp's three passes
// over the buffer in place, kept literal so edge cases match.
void clean_up_spaces(std::string& s) {
    char* text = s.data();
    int32_t total = int32_t(s.size());

    const int32_t total1 = total;
    total = total ? 1 : 0;
    for (int32_t i = 1; i < total1; ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        text[total++] = x;
    }

    const int32_t total2 = total;
    total = total ? 1 : 0;
    for (int32_t i = 1; i < total2; ++i) {
        const char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }

    const int32_t total3 = total;
    total = total ? 1 : 0;
    for (int32_t i = 1; i < total3; ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            const char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') {
                total--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                const char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
            }
        }
        text[total++] = x;
    }
    s.resize(size_t(total));
}

}  // namespace

int32_t Vocab::Impl::byte_to_token(uint8_t byte) const {
    static const char* hex = "0123456789ABCDEF";
    const char buf[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    const int32_t id = find(std::string_view(buf, 6));
    if (id != kNoToken) return id;
    const char c = char(byte);
    return find(std::string_view(&c, 1));
}

namespace {

std::string compute_piece(const Vocab::Impl& v, int32_t id) {
    const VocabEntry& t = v.tokens[size_t(id)];
    if (t.attr & (kTokenAttrUnknown | kTokenAttrControl | kTokenAttrUserDefined)) return t.text;
    if (t.attr & kTokenAttrNormal) {
        if (v.type != VocabType::Bpe) {
            std::string s = t.text;
            replace_all(s, kSpaceEscape, " ");
            return s;
        }
        // Undo GPT-2's byte mapping; characters outside it are flagged the way llama.cpp
        // flags them.
        std::string out;
        const auto cpts = unicode::decode_utf8(t.text);
        std::string ch;
        for (const uint32_t c : cpts) {
            ch.clear();
            unicode::append_utf8(ch, c);
            const int b = unicode::byte_of(ch);
            if (b >= 0) {
                out.push_back(char(b));
            } else {
                out += "[UNK_BYTE_0x";
                for (const char x : ch) {
                    static const char* hex = "0123456789abcdef";
                    out.push_back(hex[uint8_t(x) >> 4]);
                    out.push_back(hex[uint8_t(x) & 15]);
                }
                out += t.text + "]";
            }
        }
        return out;
    }
    if (t.attr & kTokenAttrByte) {
        // "<0xNN>"
        if (t.text.size() >= 5) {
            const std::string hex = t.text.substr(3, 2);
            char* end = nullptr;
            const long b = std::strtol(hex.c_str(), &end, 16);
            if (end != hex.c_str()) return std::string(1, char(b));
        }
        return {};
    }
    return {};  // unused / undefined tokens render as nothing
}

}  // namespace

Vocab Vocab::from_gguf(const gguf::GgufFile& f) {
    auto impl = std::make_shared<Impl>();
    Impl& v = *impl;

    const auto model = f.get_string("tokenizer.ggml.model");
    check(model.has_value(), f.path() + ": missing vocabulary key 'tokenizer.ggml.model'");
    v.model = *model;
    v.pre = f.get_string("tokenizer.ggml.pre").value_or("");

    if (v.model == "llama") {
        v.type = VocabType::Spm;
        v.bos = 1;
        v.eos = 2;
        v.unk = 0;
        v.add_space_prefix = true;
        v.add_bos = true;
    } else if (v.model == "bert") {
        v.type = VocabType::Wpm;
        v.bos = 101;
        v.unk = 100;
        v.sep = 102;
        v.pad = 0;
        v.mask = 103;
        v.add_bos = true;
        v.add_sep = true;
        v.clean_spaces = true;
    } else if (v.model == "gpt2") {
        v.type = VocabType::Bpe;
        v.bos = 11;
        v.eos = 11;
        const gguf::Array& merges = require_array(f, "tokenizer.ggml.merges");
        check(merges.elem_type == gguf::ValueType::STRING,
              f.path() + ": 'tokenizer.ggml.merges' must be an array of strings");
        v.bpe_ranks.reserve(merges.items.size());
        std::string key;
        for (size_t i = 0; i < merges.items.size(); ++i) {
            const std::string& m = *merges.items[i].as_string();
            // "left right", split at the first space after the first byte (a token may
            // itself start with a space).
            const size_t pos = m.find(' ', 1);
            std::string_view left, right;
            if (pos != std::string::npos) {
                left = std::string_view(m).substr(0, pos);
                right = std::string_view(m).substr(pos + 1);
            }
            Impl::merge_key(key, left, right);
            v.bpe_ranks.emplace(key, int32_t(i));  // the first occurrence keeps its rank
        }
        v.pre_info = resolve_pre_type(v.pre);
        if (v.pre.empty()) {
            log::warn("vocab: %s has no tokenizer.ggml.pre; using the default pre-tokenizer",
                      f.path().c_str());
        } else if (!v.pre_info.known) {
            log::warn("vocab: unknown pre-tokenizer '%s' in %s; using gpt-2's", v.pre.c_str(),
                      f.path().c_str());
        }
        v.clean_spaces = v.pre_info.clean_spaces;
        v.ignore_merges = v.pre_info.ignore_merges;
        v.add_bos = v.pre_info.add_bos;
        v.pre_tokenizer = std::make_unique<PreTokenizer>(v.pre_info.type);
    } else {
        throw Error(f.path() + ": unsupported tokenizer model '" + v.model +
                    "' (supported: llama, gpt2, bert)");
    }
    if (auto b = f.get_bool("tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;
    if (auto b = f.get_bool("tokenizer.ggml.remove_extra_whitespaces"))
        v.remove_extra_whitespaces = *b;

    // Token texts, scores, types.
    const gguf::Array& texts = require_array(f, "tokenizer.ggml.tokens");
    check(texts.elem_type == gguf::ValueType::STRING,
          f.path() + ": 'tokenizer.ggml.tokens' must be an array of strings");
    const size_t n = texts.items.size();
    check(n > 0, f.path() + ": 'tokenizer.ggml.tokens' is empty");
    check(n < size_t(INT32_MAX), f.path() + ": too many tokens");
    const gguf::Array* scores = f.get_array("tokenizer.ggml.scores");
    if (scores) {
        check(scores->elem_type == gguf::ValueType::FLOAT32 ||
                  scores->elem_type == gguf::ValueType::INT32,
              f.path() + ": 'tokenizer.ggml.scores' must be an array of f32 or i32");
        check(scores->items.size() >= n, f.path() + ": 'tokenizer.ggml.scores' has " +
                                             std::to_string(scores->items.size()) +
                                             " entries for " + std::to_string(n) + " tokens");
    }
    const gguf::Array* types = f.get_array("tokenizer.ggml.token_type");
    if (types) {
        check(types->elem_type == gguf::ValueType::INT32,
              f.path() + ": 'tokenizer.ggml.token_type' must be an array of i32");
        check(types->items.size() >= n, f.path() + ": 'tokenizer.ggml.token_type' has " +
                                            std::to_string(types->items.size()) + " entries for " +
                                            std::to_string(n) + " tokens");
    }
    v.tokens.resize(n);
    v.token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        std::string word = *texts.items[i].as_string();
        if (word.empty()) word = "[EMPTY_" + std::to_string(i) + "]";
        const auto [it, inserted] = v.token_to_id.emplace(word, int32_t(i));
        check(inserted, f.path() + ": duplicate token '" + word + "' at ids " +
                            std::to_string(it->second) + " and " + std::to_string(i));
        v.max_token_len = std::max(v.max_token_len, word.size());
        VocabEntry& t = v.tokens[i];
        t.text = std::move(word);
        if (scores) t.score = float(*scores->items[i].as_double());
        if (types) t.attr = attr_from_type(*types->items[i].as_int());
    }

    // Special token ids: defaults out of range are dropped; keys override when valid.
    struct IdKey {
        const char* key;
        int32_t* id;
    };
    const IdKey id_keys[] = {
        {"tokenizer.ggml.bos_token_id", &v.bos},     {"tokenizer.ggml.eos_token_id", &v.eos},
        {"tokenizer.ggml.eot_token_id", &v.eot},     {"tokenizer.ggml.eom_token_id", &v.eom},
        {"tokenizer.ggml.unknown_token_id", &v.unk}, {"tokenizer.ggml.seperator_token_id", &v.sep},
        {"tokenizer.ggml.padding_token_id", &v.pad}, {"tokenizer.ggml.mask_token_id", &v.mask},
    };
    for (const auto& k : id_keys) {
        if (*k.id >= 0 && size_t(*k.id) >= n) *k.id = kNoToken;
        const Value* val = f.find(k.key);
        if (!val) continue;
        const auto id = val->as_int();
        if (!id || *id < 0 || size_t(*id) >= n) {
            // -1 (often stored as u32 0xFFFFFFFF) is the converters' "not set".
            if (id && (*id == -1 || *id == 0xFFFFFFFF)) continue;
            log::warn("vocab: %s: ignoring bad special token id %s", f.path().c_str(), k.key);
            continue;
        }
        *k.id = int32_t(*id);
    }
    if (auto b = f.get_bool("tokenizer.ggml.add_bos_token")) v.add_bos = *b;
    if (auto b = f.get_bool("tokenizer.ggml.add_eos_token")) v.add_eos = *b;
    if (auto b = f.get_bool("tokenizer.ggml.add_sep_token")) v.add_sep = *b;
    check(!v.add_bos || v.bos != kNoToken,
          f.path() + ": tokenizer.ggml.add_bos_token is true but there is no BOS token");
    check(!v.add_eos || v.eos != kNoToken,
          f.path() + ": tokenizer.ggml.add_eos_token is true but there is no EOS token");

    if (v.type == VocabType::Spm) {
        v.spm_words_independent = true;
        for (const VocabEntry& t : v.tokens) {
            // Skip the leading run of U+2581; any later one breaks the property.
            size_t lead = 0;
            while (t.text.compare(lead, kSpaceEscape.size(), kSpaceEscape) == 0)
                lead += kSpaceEscape.size();
            if (t.text.find(kSpaceEscape, lead) != std::string::npos) {
                v.spm_words_independent = false;
                break;
            }
        }
    }

    // End-of-generation tokens recognised by their text (llama.cpp's workaround for
    // converters that do not record them), scanned in id order.
    auto make_control = [&](int32_t id) {
        uint32_t& attr = v.tokens[size_t(id)].attr;
        if (!(attr & kTokenAttrControl)) {
            log::debug("vocab: token %d '%s' looks like a control token; treating it as one", id,
                       v.tokens[size_t(id)].text.c_str());
            attr |= kTokenAttrControl;
        }
    };
    static const std::string_view kEotTexts[] = {
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "<|end_of_text|>",
        "<EOT>",
        "_<EOT>",
        "<\xEF\xBD\x9C"
        "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
        "<end_of_utterance>"};
    static const std::string_view kEogTexts[] = {
        "<|eot_id|>", "<|im_end|>",    "<|end|>",         "<|return|>",
        "<|call|>",   "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
        "<EOT>",      "_<EOT>",        "<|end_of_text|>", "<end_of_utterance>"};
    auto in = [](std::string_view s, const auto& list) {
        return std::find(std::begin(list), std::end(list), s) != std::end(list);
    };
    for (size_t i = 0; i < n; ++i) {
        const std::string& text = v.tokens[i].text;
        if (v.eot == kNoToken && in(text, kEotTexts)) {
            v.eot = int32_t(i);
            make_control(int32_t(i));
        }
        if (v.eom == kNoToken && text == "<|eom_id|>") {
            v.eom = int32_t(i);
            make_control(int32_t(i));
        }
    }
    for (size_t i = 0; i < n; ++i) {
        if (in(v.tokens[i].text, kEogTexts)) {
            v.eog.push_back(int32_t(i));
            make_control(int32_t(i));
        }
    }
    for (const int32_t id : {v.eos, v.eot, v.eom}) {
        if (id != kNoToken) v.eog.push_back(id);
    }
    std::sort(v.eog.begin(), v.eog.end());
    v.eog.erase(std::unique(v.eog.begin(), v.eog.end()), v.eog.end());
    {
        // gpt-oss: with <|return|> and <|call|> present, <|end|> only ends a message.
        int32_t end_id = kNoToken;
        bool has_return = false, has_call = false;
        for (const int32_t id : v.eog) {
            const std::string& t = v.tokens[size_t(id)].text;
            has_return |= t == "<|return|>";
            has_call |= t == "<|call|>";
            if (t == "<|end|>") end_id = id;
        }
        if (has_return && has_call && end_id != kNoToken) {
            v.eog.erase(std::find(v.eog.begin(), v.eog.end(), end_id));
            v.tokens[size_t(end_id)].attr = kTokenAttrUserDefined;
        }
    }

    // Tokens split out of the text before tokenizing, longest first (ties by id, for
    // determinism).
    for (size_t i = 0; i < n; ++i) {
        if (v.tokens[i].attr & (kTokenAttrControl | kTokenAttrUserDefined | kTokenAttrUnknown))
            v.special_tokens.push_back(int32_t(i));
    }
    std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
        return v.tokens[size_t(a)].text.size() > v.tokens[size_t(b)].text.size();
    });

    v.pieces.resize(n);
    for (size_t i = 0; i < n; ++i) v.pieces[i] = compute_piece(v, int32_t(i));

    // Model-specific strip rules llama.cpp applies by name.
    {
        std::string name = f.get_string("general.name").value_or("");
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        const std::string arch = f.get_string("general.architecture").value_or("");
        auto set_attr = [&](std::string_view text, uint32_t attr, bool on) {
            const int32_t id = v.find(text);
            if (id == kNoToken) return;
            uint32_t& a = v.tokens[size_t(id)].attr;
            a = on ? (a | attr) : (a & ~attr);
        };
        if (v.pre.find("jina-v2-de") != std::string::npos ||
            v.pre.find("jina-v2-es") != std::string::npos ||
            v.pre.find("jina-v2-code") != std::string::npos ||
            arch.find("nomic-bert-moe") != std::string::npos ||
            arch.find("jina-bert-v3") != std::string::npos) {
            set_attr("<mask>", kTokenAttrLstrip, true);
        } else if (name.find("phi-3") != std::string::npos ||
                   name.find("phi3") != std::string::npos) {
            for (const int32_t id : v.special_tokens) v.tokens[size_t(id)].attr |= kTokenAttrRstrip;
            set_attr("</s>", kTokenAttrRstrip, true);
            for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
                set_attr(t, kTokenAttrRstrip, false);
        }
    }

    // The newline token.
    if (v.type == VocabType::Spm) {
        v.nl = v.byte_to_token('\n');
        if (v.nl == kNoToken) v.nl = v.pad;
    } else if (v.type == VocabType::Wpm) {
        v.nl = v.pad;
    } else {
        std::vector<int32_t> ids;
        BpeSession(v).tokenize("\n", ids);
        v.nl = ids.empty() ? v.pad : ids[0];
    }

    Vocab vocab;
    vocab.impl_ = std::move(impl);
    return vocab;
}

std::vector<int32_t> Vocab::tokenize(std::string_view text, bool add_special,
                                     bool parse_special) const {
    const Impl& v = *impl_;

    // Split special tokens out of the text, one token text at a time (longest first).
    // Control and unknown tokens only with parse_special; user-defined ones always.
    std::vector<Fragment> frags;
    if (!text.empty()) frags.push_back({kNoToken, 0, text.size()});
    std::vector<Fragment> next;
    for (const int32_t sid : v.special_tokens) {
        const VocabEntry& t = v.tokens[size_t(sid)];
        if (!parse_special && (t.attr & (kTokenAttrControl | kTokenAttrUnknown))) continue;
        const std::string_view st = t.text;
        if (text.find(st) == std::string_view::npos) continue;  // common case: absent
        next.clear();
        for (const Fragment& fr : frags) {
            if (fr.token != kNoToken) {
                next.push_back(fr);
                continue;
            }
            size_t pos = fr.offset;
            const size_t end = fr.offset + fr.length;
            for (;;) {
                const size_t m = text.substr(0, end).find(st, pos);
                if (m == std::string_view::npos) break;
                size_t left_len = m - pos;
                if (t.attr & kTokenAttrLstrip) {
                    while (left_len > 0 && is_ascii_space(text[pos + left_len - 1])) --left_len;
                }
                if (left_len > 0) next.push_back({kNoToken, pos, left_len});
                next.push_back({sid, 0, 0});
                pos = m + st.size();
                if (t.attr & kTokenAttrRstrip) {
                    while (pos < end && is_ascii_space(text[pos])) ++pos;
                }
            }
            if (pos < end) next.push_back({kNoToken, pos, end - pos});
        }
        frags.swap(next);
    }

    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    switch (v.type) {
        case VocabType::Spm: {
            if (add_special && v.add_bos) out.push_back(v.bos);
            bool prev_special = true;  // the first fragment gets the leading space too
            std::string buf;
            std::unordered_map<std::string, std::vector<int32_t>> cache;
            for (const Fragment& fr : frags) {
                if (fr.token != kNoToken) {
                    out.push_back(fr.token);
                    prev_special = true;
                    continue;
                }
                buf.clear();
                if (v.add_space_prefix && prev_special) buf.push_back(' ');
                buf.append(text.substr(fr.offset, fr.length));
                replace_all(buf, " ", kSpaceEscape);
                spm_tokenize_words(v, buf, out, cache);
                prev_special = false;
            }
            if (add_special && v.add_eos) out.push_back(v.eos);
            break;
        }
        case VocabType::Bpe: {
            if (add_special && v.add_bos) out.push_back(v.bos);
            BpeSession session(v);
            for (const Fragment& fr : frags) {
                if (fr.token != kNoToken) {
                    out.push_back(fr.token);
                } else {
                    session.tokenize(text.substr(fr.offset, fr.length), out);
                }
            }
            if (add_special && v.add_eos) out.push_back(v.eos);
            break;
        }
        case VocabType::Wpm: {
            if (add_special && v.bos != kNoToken) out.push_back(v.bos);
            for (const Fragment& fr : frags) {
                if (fr.token != kNoToken) {
                    out.push_back(fr.token);
                } else {
                    wpm_tokenize(v, text.substr(fr.offset, fr.length), out);
                }
            }
            if (add_special && v.sep != kNoToken) out.push_back(v.sep);
            break;
        }
    }
    return out;
}

namespace {
void check_id(const Vocab::Impl& v, int32_t id) {
    check(id >= 0 && size_t(id) < v.tokens.size(),
          "token id " + std::to_string(id) + " is out of range (vocabulary of " +
              std::to_string(v.tokens.size()) + " tokens)");
}
}  // namespace

std::string Vocab::token_to_piece(int32_t id, bool special) const {
    check_id(*impl_, id);
    const VocabEntry& t = impl_->tokens[size_t(id)];
    if (!special && (t.attr & (kTokenAttrUnknown | kTokenAttrControl))) return {};
    return impl_->pieces[size_t(id)];
}

std::string Vocab::detokenize(std::span<const int32_t> ids, bool remove_special,
                              bool unparse_special) const {
    const Impl& v = *impl_;
    bool remove_space = v.add_space_prefix;  // undo the leading space SPM adds
    if (remove_special && v.add_bos && !ids.empty() && ids.front() == v.bos) {
        remove_space = false;
        ids = ids.subspan(1);
    }
    if (remove_special && v.add_eos && !ids.empty() && ids.back() == v.eos) {
        ids = ids.first(ids.size() - 1);
    }
    std::string out;
    for (const int32_t id : ids) {
        const std::string piece = token_to_piece(id, unparse_special);
        // Only the very first token loses its space, even when it renders as nothing.
        const size_t skip = remove_space && !piece.empty() && piece[0] == ' ' ? 1 : 0;
        out.append(piece, skip, std::string::npos);
        remove_space = false;
    }
    if (v.clean_spaces) clean_up_spaces(out);
    return out;
}

bool Vocab::is_eog(int32_t id) const {
    return id != kNoToken && std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}
const std::vector<int32_t>& Vocab::eog_ids() const { return impl_->eog; }

VocabType Vocab::type() const { return impl_->type; }
const std::string& Vocab::model_name() const { return impl_->model; }
const std::string& Vocab::pre_name() const { return impl_->pre; }
int32_t Vocab::n_tokens() const { return int32_t(impl_->tokens.size()); }
int32_t Vocab::bos() const { return impl_->bos; }
int32_t Vocab::eos() const { return impl_->eos; }
int32_t Vocab::eot() const { return impl_->eot; }
int32_t Vocab::eom() const { return impl_->eom; }
int32_t Vocab::unk() const { return impl_->unk; }
int32_t Vocab::sep() const { return impl_->sep; }
int32_t Vocab::pad() const { return impl_->pad; }
int32_t Vocab::mask() const { return impl_->mask; }
int32_t Vocab::nl() const { return impl_->nl; }
bool Vocab::add_bos() const { return impl_->add_bos; }
bool Vocab::add_eos() const { return impl_->add_eos; }
bool Vocab::add_sep() const { return impl_->add_sep; }
bool Vocab::add_space_prefix() const { return impl_->add_space_prefix; }

const std::string& Vocab::token_text(int32_t id) const {
    check_id(*impl_, id);
    return impl_->tokens[size_t(id)].text;
}
float Vocab::token_score(int32_t id) const {
    check_id(*impl_, id);
    return impl_->tokens[size_t(id)].score;
}
uint32_t Vocab::token_attr(int32_t id) const {
    check_id(*impl_, id);
    return impl_->tokens[size_t(id)].attr;
}
bool Vocab::is_control(int32_t id) const { return token_attr(id) & kTokenAttrControl; }
bool Vocab::is_byte(int32_t id) const { return token_attr(id) & kTokenAttrByte; }
int32_t Vocab::text_to_token(std::string_view text) const { return impl_->find(text); }

}  // namespace lcx
