// Vocab behaviour beyond the llama.cpp vectors: real models' prompts against llama.cpp's
// golden tokens, special tokens, EOG, pieces and detokenization, invalid UTF-8, and
// errors on malformed vocabulary metadata.
#include "vocab/vocab.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "test_support.h"

namespace lcx {
namespace {

using Ids = std::vector<int32_t>;

// Loading a 50k-token vocabulary takes a while; each file is loaded once per run.
const Vocab& load(const std::filesystem::path& p) {
    static std::map<std::string, Vocab> cache;
    auto it = cache.find(p.string());
    if (it == cache.end())
        it = cache.emplace(p.string(), Vocab::from_gguf(gguf::GgufFile::open(p))).first;
    return it->second;
}

#define LOAD_VOCAB(var, rel)           \
    LCX_REQUIRE_DATA(var##_path, rel); \
    const Vocab var = load(var##_path)

Ids concat(std::initializer_list<Ids> parts) {
    Ids out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

TEST(Vocab, Stories260KOnceUponATime) {
    std::filesystem::path path = "models/stories260K.gguf";  // bundled with the repo
    if (!std::filesystem::exists(path)) {
        LCX_REQUIRE_DATA(shared, "models/stories260K.gguf");
        path = shared;
    }
    const Vocab v = load(path);
    EXPECT_EQ(v.type(), VocabType::Spm);
    EXPECT_EQ(v.n_tokens(), 512);
    EXPECT_TRUE(v.add_bos());
    EXPECT_EQ(v.tokenize("Once upon a time", true, false), (Ids{1, 403, 407, 261, 378}));
    EXPECT_EQ(v.detokenize(Ids{403, 407, 261, 378}), "Once upon a time");
    EXPECT_TRUE(v.is_eog(v.eos()));
    EXPECT_FALSE(v.is_eog(403));
}

// Every golden prompt of llama.cpp (with BOS, special tokens not parsed), from both the
// bundled tests/data/golden and ../shared/data/golden.
TEST(Vocab, GoldenPromptTokens) {
    std::set<std::string> seen;
    int checked = 0;
    for (const char* root : {LCX_TEST_DATA, LCX_SHARED_DATA}) {
        const std::filesystem::path dir = std::filesystem::path(root) / "golden";
        if (!std::filesystem::is_directory(dir)) continue;
        for (const auto& entry : std::filesystem::directory_iterator(dir)) {
            if (entry.path().extension() != ".json") continue;
            if (!seen.insert(entry.path().filename().string()).second) continue;
            const auto bytes = test::read_file(entry.path());
            const auto j = nlohmann::json::parse(bytes.begin(), bytes.end());
            if (!j.contains("prompt") || !j.contains("model")) continue;
            const std::string model = j["model"];
            std::optional<std::filesystem::path> path;
            for (const char* sub : {"models/", "models/zoo/", "models/arch/"}) {
                if ((path = test::find_data(sub + model))) break;
            }
            if (!path) {
                ADD_FAILURE() << "model " << model << " of " << entry.path() << " not found";
                continue;
            }
            const Vocab v = load(*path);
            const Ids expected = j["prompt_tokens"].get<Ids>();
            EXPECT_EQ(v.tokenize(j["prompt"].get<std::string>(), true, false), expected)
                << entry.path().filename();
            ++checked;
        }
    }
    if (checked == 0) GTEST_SKIP() << "no golden/*.json found";
}

TEST(Vocab, Llama2VocabBasics) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-llama-spm.gguf");
    EXPECT_EQ(v.n_tokens(), 32000);
    EXPECT_EQ(v.bos(), 1);
    EXPECT_EQ(v.eos(), 2);
    EXPECT_EQ(v.unk(), 0);
    EXPECT_EQ(v.nl(), v.text_to_token("<0x0A>"));
    EXPECT_EQ(v.token_to_piece(v.text_to_token("\xE2\x96\x81Hello")), " Hello");
    EXPECT_EQ(v.token_to_piece(v.text_to_token("<0x0A>")), "\n");
    EXPECT_EQ(v.token_to_piece(1, true), "<s>");
    EXPECT_EQ(v.token_to_piece(1, false), "");
    EXPECT_THROW(v.token_to_piece(32000), Error);
    EXPECT_THROW(v.token_to_piece(-1), Error);
    EXPECT_TRUE(v.is_control(1));
    EXPECT_TRUE(v.is_byte(v.text_to_token("<0xFF>")));
    EXPECT_TRUE(v.is_eog(2));
    EXPECT_FALSE(v.is_eog(1));
}

TEST(Vocab, SpmDetokenizeLeadingSpaceAndBos) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-llama-spm.gguf");
    const Ids ids = v.tokenize("Hello world", true, false);
    ASSERT_EQ(ids.front(), 1);
    // Without BOS the first token's leading space (the one tokenize added) goes away.
    EXPECT_EQ(v.detokenize(std::span(ids).subspan(1)), "Hello world");
    // As llama.cpp: only the first token loses its space, and a BOS in front (removed,
    // or rendered as nothing) is that first token, so the space stays.
    EXPECT_EQ(v.detokenize(ids, /*remove_special=*/true), " Hello world");
    EXPECT_EQ(v.detokenize(ids, false, false), " Hello world");
    EXPECT_EQ(v.detokenize(ids, false, true), "<s> Hello world");
    EXPECT_EQ(v.detokenize(Ids{}), "");
}

TEST(Vocab, SpmSpecialTokensOnlyWhenParsing) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-llama-spm.gguf");
    // After a special token the next fragment gets the leading space, like the first.
    const Ids parsed = v.tokenize("Hello</s>world", false, true);
    EXPECT_EQ(parsed, concat({v.tokenize("Hello", false, false), Ids{2},
                              v.tokenize("world", false, false)}));
    const Ids literal = v.tokenize("Hello</s>world", false, false);
    EXPECT_EQ(std::count(literal.begin(), literal.end(), 2), 0);
    EXPECT_EQ(v.detokenize(literal), "Hello</s>world");
}

TEST(Vocab, BpeSpecialTokensAndEog) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-gpt-2.gguf");
    const int32_t eot = v.text_to_token("<|endoftext|>");
    ASSERT_NE(eot, Vocab::kNoToken);
    EXPECT_TRUE(v.is_eog(eot));
    const int32_t a = v.text_to_token("a");
    const int32_t b = v.text_to_token("b");
    EXPECT_EQ(v.tokenize("a<|endoftext|>b", false, true), (Ids{a, eot, b}));
    const Ids literal = v.tokenize("a<|endoftext|>b", false, false);
    EXPECT_EQ(std::count(literal.begin(), literal.end(), eot), 0);
    EXPECT_EQ(v.detokenize(literal), "a<|endoftext|>b");
    // The control token renders only when asked to.
    EXPECT_EQ(v.detokenize(Ids{a, eot, b}, false, false), "ab");
    EXPECT_EQ(v.detokenize(Ids{a, eot, b}, false, true), "a<|endoftext|>b");
}

TEST(Vocab, BpePiecesUndoByteMapping) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-gpt-2.gguf");
    // U+0120 'Ġ' stands for the space byte, U+010A 'Ċ' for newline.
    EXPECT_EQ(v.token_to_piece(v.text_to_token("\xC4\xA0hello")), " hello");
    EXPECT_EQ(v.token_to_piece(v.text_to_token("\xC4\x8A")), "\n");
    EXPECT_EQ(v.nl(), v.text_to_token("\xC4\x8A"));
}

TEST(Vocab, BpeCleanUpSpacesAsLlamaCpp) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-gpt-2.gguf");
    auto rt = [&](const char* s) { return v.detokenize(v.tokenize(s, false, false)); };
    EXPECT_EQ(rt("Hello , world !"), "Hello, world!");
    EXPECT_EQ(rt("I 'm here , you 're there"), "I'm here, you're there");
    EXPECT_EQ(rt("don 't"), "don 't");  // llama.cpp leaves " 't" alone
    // deepseek-coder turns the clean-up off.
    LOAD_VOCAB(ds, "vocab/ggml-vocab-deepseek-coder.gguf");
    EXPECT_EQ(ds.detokenize(ds.tokenize("Hello , world !", false, false)), "Hello , world !");
}

TEST(Vocab, WpmAddsClsAndSep) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-bert-bge.gguf");
    EXPECT_EQ(v.type(), VocabType::Wpm);
    const int32_t hello = v.text_to_token("\xE2\x96\x81hello");
    ASSERT_NE(hello, Vocab::kNoToken);
    EXPECT_EQ(v.tokenize("Hello", true, false), (Ids{101, hello, 102}));
    EXPECT_EQ(v.tokenize("HELLO", false, false), (Ids{hello}));
}

// Invalid UTF-8 is tokenized, never thrown on. SPM keeps the raw bytes as byte tokens
// (so they come back unchanged); BPE and WPM read each invalid byte as U+FFFD, which
// WPM then drops.
TEST(Vocab, InvalidUtf8SpmKeepsBytes) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-llama-spm.gguf");
    const std::string bad =
        "a\xFF\xFE"
        "b\xC3";
    const Ids ids = v.tokenize(bad, false, false);
    EXPECT_NE(std::find(ids.begin(), ids.end(), v.text_to_token("<0xFF>")), ids.end());
    EXPECT_NE(std::find(ids.begin(), ids.end(), v.text_to_token("<0xC3>")), ids.end());
    EXPECT_EQ(v.detokenize(ids), bad);
}

TEST(Vocab, InvalidUtf8BpeIsReplacementCharacter) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-gpt-2.gguf");
    EXPECT_EQ(v.tokenize("a\xFF"
                         "b",
                         false, false),
              v.tokenize("a\xEF\xBF\xBD"
                         "b",
                         false, false));
    EXPECT_EQ(v.tokenize("x\xE2\x82", false, false),
              v.tokenize("x\xEF\xBF\xBD\xEF\xBF\xBD", false, false));
    EXPECT_EQ(v.detokenize(v.tokenize("\xC0", false, false)), "\xEF\xBF\xBD");
}

TEST(Vocab, InvalidUtf8WpmDropsIt) {
    LOAD_VOCAB(v, "vocab/ggml-vocab-bert-bge.gguf");
    EXPECT_EQ(v.tokenize("hello\xFFworld", false, false), v.tokenize("helloworld", false, false));
}

TEST(Vocab, RandomBytesNeverThrow) {
    std::mt19937 rng(1234);
    for (const char* name : {"llama-spm", "gpt-2", "deepseek-llm", "gpt2-pre-llama-bpe",
                             "gpt2-pre-tekken", "bert-bge"}) {
        LCX_REQUIRE_DATA(p, std::string("vocab/ggml-vocab-") + name + ".gguf");
        const Vocab v = load(p);
        for (int iter = 0; iter < 50; ++iter) {
            std::string s(size_t(rng() % 64), '\0');
            for (char& c : s) c = char(rng() % 256);
            Ids ids;
            ASSERT_NO_THROW(ids = v.tokenize(s, true, true)) << name;
            ASSERT_NO_THROW(v.detokenize(ids, false, true)) << name;
        }
    }
}

// An unknown tokenizer.ggml.pre falls back to gpt-2's pre-tokenizer.
TEST(Vocab, UnknownPreTokenizerFallsBackToGpt2) {
    LCX_REQUIRE_DATA(p, "vocab/ggml-vocab-gpt-2.gguf");
    const auto file = gguf::GgufFile::open(p);
    gguf::GgufWriter w;
    for (const auto& kv : file.metadata()) w.add(kv.key, kv.value);
    w.add("tokenizer.ggml.pre", gguf::Value{std::string("no-such-pre-tokenizer")});
    const auto bytes = w.to_bytes();
    const Vocab unknown = Vocab::from_gguf(gguf::GgufFile::from_memory(bytes));
    w.add("tokenizer.ggml.pre", gguf::Value{std::string("gpt-2")});
    const auto bytes2 = w.to_bytes();
    const Vocab gpt2 = Vocab::from_gguf(gguf::GgufFile::from_memory(bytes2));
    const std::string text = "Hello world! 12345 don't  stop\n\n";
    EXPECT_EQ(unknown.tokenize(text, false, false), gpt2.tokenize(text, false, false));
}

gguf::Value str_array(std::vector<std::string> items) {
    gguf::Array a;
    a.elem_type = gguf::ValueType::STRING;
    for (auto& s : items) a.items.push_back(gguf::Value{std::move(s)});
    return gguf::Value{std::move(a)};
}

Vocab from_writer(const gguf::GgufWriter& w) {
    const auto bytes = w.to_bytes();
    return Vocab::from_gguf(gguf::GgufFile::from_memory(bytes));
}

TEST(Vocab, MalformedMetadataThrows) {
    {
        gguf::GgufWriter w;  // no tokenizer at all
        w.add("general.architecture", gguf::Value{std::string("llama")});
        EXPECT_THROW(from_writer(w), Error);
    }
    {
        gguf::GgufWriter w;
        w.add("tokenizer.ggml.model", gguf::Value{std::string("rwkv")});
        w.add("tokenizer.ggml.tokens", str_array({"a", "b"}));
        EXPECT_THROW(from_writer(w), Error);  // unsupported model
    }
    {
        gguf::GgufWriter w;
        w.add("tokenizer.ggml.model", gguf::Value{std::string("llama")});
        EXPECT_THROW(from_writer(w), Error);  // no tokens
    }
    {
        gguf::GgufWriter w;
        w.add("tokenizer.ggml.model", gguf::Value{std::string("llama")});
        w.add("tokenizer.ggml.tokens", str_array({"<unk>", "<s>", "</s>", "a", "a"}));
        EXPECT_THROW(from_writer(w), Error);  // duplicate token
    }
    {
        gguf::GgufWriter w;
        w.add("tokenizer.ggml.model", gguf::Value{std::string("gpt2")});
        w.add("tokenizer.ggml.tokens", str_array({"a", "b", "ab"}));
        EXPECT_THROW(from_writer(w), Error);  // BPE without merges
    }
    {
        gguf::GgufWriter w;
        w.add("tokenizer.ggml.model", gguf::Value{std::string("llama")});
        w.add("tokenizer.ggml.tokens", str_array({"<unk>", "<s>", "</s>", "a"}));
        gguf::Array scores;
        scores.elem_type = gguf::ValueType::FLOAT32;
        scores.items.push_back(gguf::Value{0.0f});
        w.add("tokenizer.ggml.scores", gguf::Value{std::move(scores)});
        EXPECT_THROW(from_writer(w), Error);  // fewer scores than tokens
    }
}

// A minimal BPE vocabulary built here: merges apply by rank, lowest first.
TEST(Vocab, BpeMergeRanksFromMetadata) {
    gguf::GgufWriter w;
    w.add("tokenizer.ggml.model", gguf::Value{std::string("gpt2")});
    w.add("tokenizer.ggml.pre", gguf::Value{std::string("gpt-2")});
    w.add("tokenizer.ggml.tokens", str_array({"a", "b", "c", "ab", "bc", "abc"}));
    // "b c" ranks before "a b": "abc" -> a + bc; "a bc" is not a merge.
    w.add("tokenizer.ggml.merges", str_array({"b c", "a b", "ab c"}));
    const Vocab v = from_writer(w);
    EXPECT_EQ(v.tokenize("abc", false, false), (Ids{0, 4}));
    EXPECT_EQ(v.tokenize("ab", false, false), (Ids{3}));
    EXPECT_EQ(v.detokenize(Ids{0, 4}), "abc");
}

}  // namespace
}  // namespace lcx
