#define PCRE2_CODE_UNIT_WIDTH 8
#include "vocab/pre_tokenizer.h"

#include <pcre2.h>

#include <utility>

#include "common/error.h"
#include "common/log.h"

namespace lcx {

namespace {

// The regexes llama.cpp uses per pre-tokenizer (several apply one after another).
// Case-insensitive groups from the original tokenizer.json are spelled out with
// character classes, as llama.cpp does.
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Code points with a singleton canonical decomposition (U+1F7D, U+1FBE, U+1FD3, U+1FDB,
// U+2126, U+212A) are written as escapes: as literals, any NFC-normalizing tool would
// silently turn them into other code points.
constexpr const char* kDeepseekLlmLetters =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-"
    "ᲺᲽ-"
    "Ჿᴀ-"
    "ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-"
    "ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-"
    "Ｚａ-"
    "ｚ𐐀-"
    "𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

std::vector<std::string> regexes_for(PreType type) {
    switch (type) {
        case PreType::Llama3:
        case PreType::Dbrx:
        case PreType::Smaug:
        case PreType::Chatglm4:
            return {kLlama3};
        case PreType::DeepseekLlm:
            return {"[\r\n]", kDeepseekLlmLetters,        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                    "\\s+$",  "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"};
        case PreType::Deepseek3:
            return {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                    "[!\"#$%&'()*+,\\-./"
                    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}"
                    "\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"};
        case PreType::DeepseekCoder:
            return {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"};
        case PreType::Falcon:
            return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"};
        case PreType::Starcoder:
        case PreType::Refact:
        case PreType::CommandR:
        case PreType::Smollm:
        case PreType::Codeshell:
        case PreType::Exaone:
        case PreType::Minerva:
            return {"\\p{N}", kGpt2};
        case PreType::Gpt2:
        case PreType::Mpt:
        case PreType::Olmo:
        case PreType::Jais:
        case PreType::Trillion:
            return {kGpt2};
        case PreType::Stablelm2:
        case PreType::Qwen2:
            return {kQwen2};
        case PreType::Poro:
        case PreType::Bloom:
        case PreType::Gpt3Finnish:
            return {" ?[^(\\s|.,!?…。，、।۔،)]+"};
        case PreType::Viking:
            return {" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"};
        case PreType::Tekken:
            return {
                "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n"
                "\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| "
                "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
        case PreType::Chameleon:
            return {"<sentinel:[0-9]+>",      "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                    "([\\t\\n]|    |  )",     "\\p{N}",
                    "[\\p{P}!-/:-@\\[-`{-~]", kGpt2};
        case PreType::Gpt4o:
            return {
                "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]"
                "|"
                "'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])(["
                "^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]"
                "|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|"
                "\\s+"};
        case PreType::Superbpe:
            return {"\\p{N}+", "(?=(\\d{3})+(?!\\d))"};
        case PreType::Bailingmoe:
            return {
                "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"};
        case PreType::SeedCoder:
            return {
                "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                "\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
        case PreType::Default:
            return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"};
    }
    return {kGpt2};
}

// Rewrites the few escapes whose meaning differs between llama.cpp's regex engine and
// PCRE2 in UCP mode: \s and \S follow the White_Space property (PCRE2 would add
// U+180E), and \d stays ASCII (std::regex's \d).
std::string to_pcre2(const std::string& re) {
    std::string out;
    bool in_class = false;
    for (size_t i = 0; i < re.size(); ++i) {
        const char c = re[i];
        if (c == '\\' && i + 1 < re.size()) {
            const char n = re[++i];
            if (n == 's') {
                out += "\\p{White_Space}";
            } else if (n == 'S') {
                out += "\\P{White_Space}";
            } else if (n == 'd') {
                out += in_class ? "0-9" : "[0-9]";
            } else {
                out += c;
                out += n;
            }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
        } else if (c == ']' && in_class) {
            in_class = false;
        }
        out += c;
    }
    return out;
}

}  // namespace

PreTypeInfo resolve_pre_type(std::string_view name) {
    PreTypeInfo info;
    auto set = [&](PreType t, bool clean_spaces = true, bool ignore_merges = false,
                   bool add_bos = false) {
        info.type = t;
        info.clean_spaces = clean_spaces;
        info.ignore_merges = ignore_merges;
        info.add_bos = add_bos;
    };
    if (name.empty() || name == "default") {
        set(PreType::Default);
    } else if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3" ||
               name == "falcon-h1" || name == "pixtral" || name == "midm-2.0" || name == "lfm2") {
        set(PreType::Llama3, true, true, true);
    } else if (name == "deepseek-llm") {
        set(PreType::DeepseekLlm, false);
    } else if (name == "deepseek-coder") {
        set(PreType::DeepseekCoder, false);
    } else if (name == "deepseek-v3") {
        set(PreType::Deepseek3, false);
    } else if (name == "falcon") {
        set(PreType::Falcon);
    } else if (name == "mpt") {
        set(PreType::Mpt);
    } else if (name == "starcoder") {
        set(PreType::Starcoder);
    } else if (name == "gpt-2" || name == "phi-2" || name == "jina-es" || name == "jina-de" ||
               name == "gigachat" || name == "jina-v1-en" || name == "jina-v2-es" ||
               name == "jina-v2-de" || name == "jina-v2-code" || name == "roberta-bpe" ||
               name == "a.x-4.0" || name == "mellum" || name == "exaone4") {
        set(PreType::Gpt2);
    } else if (name == "refact") {
        set(PreType::Refact);
    } else if (name == "command-r") {
        set(PreType::CommandR, false);
    } else if (name == "qwen2" || name == "deepseek-r1-qwen" || name == "megrez") {
        set(PreType::Qwen2, false);
    } else if (name == "stablelm2") {
        set(PreType::Stablelm2);
    } else if (name == "olmo") {
        set(PreType::Olmo);
    } else if (name == "dbrx") {
        set(PreType::Dbrx);
    } else if (name == "smaug-bpe") {
        set(PreType::Smaug);
    } else if (name == "poro-chat") {
        set(PreType::Poro, false);
    } else if (name == "glm4" || name == "chatglm-bpe") {
        set(PreType::Chatglm4);
    } else if (name == "viking") {
        set(PreType::Viking, false);
    } else if (name == "jais") {
        set(PreType::Jais);
    } else if (name == "tekken") {
        set(PreType::Tekken, false, true, true);
    } else if (name == "smollm") {
        set(PreType::Smollm, false);
    } else if (name == "codeshell") {
        set(PreType::Codeshell);
    } else if (name == "bloom") {
        set(PreType::Bloom);
    } else if (name == "gpt3-finnish") {
        set(PreType::Gpt3Finnish);
    } else if (name == "exaone") {
        set(PreType::Exaone);
    } else if (name == "chameleon") {
        set(PreType::Chameleon, false, false, true);
    } else if (name == "minerva-7b") {
        set(PreType::Minerva);
    } else if (name == "gpt-4o" || name == "llama4") {
        set(PreType::Gpt4o, false);
    } else if (name == "superbpe") {
        set(PreType::Superbpe, false);
    } else if (name == "trillion") {
        set(PreType::Trillion, false);
    } else if (name == "bailingmoe") {
        set(PreType::Bailingmoe, false);
    } else if (name == "seed-coder") {
        set(PreType::SeedCoder, false);
    } else {
        set(PreType::Gpt2);
        info.known = false;
    }
    return info;
}

struct PreTokenizer::Compiled {
    pcre2_code* code = nullptr;
    ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(PreType type) : sources_(regexes_for(type)) {
    for (const auto& src : sources_) {
        const std::string pattern = to_pcre2(src);
        int err = 0;
        PCRE2_SIZE err_off = 0;
        auto c = std::make_unique<Compiled>();
        // DOLLAR_ENDONLY: std::regex's $ does not match before a final newline.
        c->code =
            pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_AUTO_CAPTURE,
                          &err, &err_off, nullptr);
        if (!c->code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof(msg));
            throw Error("pre-tokenizer regex '" + src + "' does not compile at offset " +
                        std::to_string(err_off) + ": " + reinterpret_cast<const char*>(msg));
        }
        // JIT is an optimization only; matching falls back to the interpreter.
        pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);
        compiled_.push_back(std::move(c));
    }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
    std::vector<std::string_view> pieces;
    if (text.empty()) return pieces;
    pieces.push_back(text);

    struct MatchData {
        pcre2_match_data* md;
        ~MatchData() { pcre2_match_data_free(md); }
    } md{pcre2_match_data_create(1, nullptr)};
    if (!md.md) throw Error("pre-tokenizer: out of memory");

    std::vector<std::string_view> next;
    for (const auto& c : compiled_) {
        next.clear();
        next.reserve(pieces.size() * 2);
        for (const std::string_view chunk : pieces) {
            // Each chunk is its own subject, as llama.cpp iterates a sub-range: lookarounds
            // and $ see the chunk's ends.
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(chunk.data());
            size_t pos = 0;      // where the search resumes
            size_t emitted = 0;  // end of the last piece handed out
            while (pos < chunk.size()) {
                int rc = pcre2_match(c->code, subject, chunk.size(), pos, PCRE2_NO_UTF_CHECK, md.md,
                                     nullptr);
                if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
                    rc = pcre2_match(c->code, subject, chunk.size(), pos,
                                     PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md.md, nullptr);
                }
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(rc, msg, sizeof(msg));
                    throw Error(std::string("pre-tokenizer: regex match failed: ") +
                                reinterpret_cast<const char*>(msg));
                }
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.md);
                const size_t ms = ov[0], me = ov[1];
                if (me == ms) {
                    // An empty match (a pure lookahead) still ends the text before it,
                    // as with std::regex_iterator; then step over one character.
                    if (ms > emitted) next.push_back(chunk.substr(emitted, ms - emitted));
                    emitted = ms;
                    pos = ms + 1;
                    while (pos < chunk.size() && (uint8_t(chunk[pos]) & 0xC0) == 0x80) ++pos;
                    continue;
                }
                if (ms > emitted) next.push_back(chunk.substr(emitted, ms - emitted));
                next.push_back(chunk.substr(ms, me - ms));
                emitted = pos = me;
            }
            if (emitted < chunk.size()) next.push_back(chunk.substr(emitted));
        }
        pieces.swap(next);
    }
    return pieces;
}

}  // namespace lcx
