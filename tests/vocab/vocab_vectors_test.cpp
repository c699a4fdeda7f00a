// Tokenizer test vectors from llama.cpp: every case of ggml-vocab-*.gguf.inp must give
// exactly the ids on the matching line of .gguf.out (no BOS/EOS, special tokens not
// parsed). The .inp cases are separated by "\n__ggml_vocab_test__\n" (each case,
// the last included, is followed by that line), as llama.cpp's test-tokenizer-0 reads
// them.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "test_support.h"
#include "vocab/vocab.h"

namespace lcx {
namespace {

struct Case {
    std::string text;
    std::vector<int32_t> ids;
};

std::vector<Case> load_cases(const std::filesystem::path& inp, const std::filesystem::path& out) {
    const auto in_bytes = test::read_file(inp);
    const std::string all(in_bytes.begin(), in_bytes.end());
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    size_t pos = 0;
    for (size_t hit; (hit = all.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
        texts.push_back(all.substr(pos, hit - pos));
    }
    const auto out_bytes = test::read_file(out);
    std::istringstream lines(std::string(out_bytes.begin(), out_bytes.end()));
    std::vector<Case> cases;
    std::string line;
    for (size_t i = 0; i < texts.size() && std::getline(lines, line); ++i) {
        Case c;
        c.text = texts[i];
        std::istringstream nums(line);
        for (int32_t id; nums >> id;) c.ids.push_back(id);
        cases.push_back(std::move(c));
    }
    EXPECT_EQ(cases.size(), texts.size()) << "fewer .out lines than .inp cases in " << out;
    return cases;
}

std::string show(const std::vector<int32_t>& ids) {
    std::string s;
    for (const int32_t id : ids) {
        s += ' ';
        s += std::to_string(id);
    }
    return s;
}

// Concatenated pieces, with SPM's leading space undone: the exact inverse of tokenize.
std::string join_pieces(const Vocab& vocab, const std::vector<int32_t>& ids) {
    std::string s;
    for (const int32_t id : ids) s += vocab.token_to_piece(id);
    if (vocab.add_space_prefix() && !s.empty() && s[0] == ' ') s.erase(0, 1);
    return s;
}

// Loading a 50k-token vocabulary takes a while; each file is loaded once per run.
const Vocab& load_cached(const std::filesystem::path& p) {
    static std::map<std::string, Vocab> cache;
    auto it = cache.find(p.string());
    if (it == cache.end())
        it = cache.emplace(p.string(), Vocab::from_gguf(gguf::GgufFile::open(p))).first;
    return it->second;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, MatchesLlamaCpp) {
    const std::string name = GetParam();
    LCX_REQUIRE_DATA(gguf_path, "vocab/ggml-vocab-" + name + ".gguf");
    LCX_REQUIRE_DATA(inp, "vocab/ggml-vocab-" + name + ".gguf.inp");
    LCX_REQUIRE_DATA(out, "vocab/ggml-vocab-" + name + ".gguf.out");
    const Vocab& vocab = load_cached(gguf_path);
    const auto cases = load_cases(inp, out);
    ASSERT_EQ(cases.size(), 46u);
    for (const Case& c : cases) {
        const auto got = vocab.tokenize(c.text, /*add_special=*/false, /*parse_special=*/false);
        EXPECT_EQ(got, c.ids) << name << " case '" << c.text << "'\n  got:     " << show(got)
                              << "\n  expected:" << show(c.ids);
    }
}

// Round trip on the same inputs. SPM and byte-level BPE can represent any valid UTF-8,
// so the pieces must give the text back exactly; WPM lowercases and drops accents, so
// it is excluded. detokenize() additionally applies the vocabulary's space clean-up
// (" ," -> ","), so it is held to the text only where that clean-up has nothing to do.
TEST_P(VocabVectors, RoundTrip) {
    const std::string name = GetParam();
    if (name == "bert-bge") GTEST_SKIP() << "WordPiece normalizes its input; no round trip";
    LCX_REQUIRE_DATA(gguf_path, "vocab/ggml-vocab-" + name + ".gguf");
    LCX_REQUIRE_DATA(inp, "vocab/ggml-vocab-" + name + ".gguf.inp");
    LCX_REQUIRE_DATA(out, "vocab/ggml-vocab-" + name + ".gguf.out");
    const Vocab& vocab = load_cached(gguf_path);
    for (const Case& c : load_cases(inp, out)) {
        const auto ids = vocab.tokenize(c.text, false, false);
        EXPECT_EQ(join_pieces(vocab, ids), c.text) << name << " pieces of '" << c.text << "'";
        const bool cleanup_applies =
            c.text.find(" ?") != std::string::npos || c.text.find(" !") != std::string::npos ||
            c.text.find(" .") != std::string::npos || c.text.find(" ,") != std::string::npos ||
            c.text.find(" '") != std::string::npos;
        const bool clean_spaces = vocab.type() == VocabType::Bpe &&
                                  vocab.detokenize(vocab.tokenize("a ,", false, false)) == "a,";
        if (!clean_spaces || !cleanup_applies) {
            EXPECT_EQ(vocab.detokenize(ids), c.text) << name << " detokenize of '" << c.text << "'";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabVectors,
                         ::testing::Values("llama-spm", "gpt-2", "starcoder", "falcon",
                                           "deepseek-coder", "deepseek-llm", "bert-bge",
                                           "gpt2-pre-llama-bpe", "gpt2-pre-qwen2",
                                           "gpt2-pre-smollm", "gpt2-pre-command-r",
                                           "gpt2-pre-deepseek-v3", "gpt2-pre-tekken"),
                         [](const auto& info) {
                             std::string s = info.param;
                             for (char& ch : s)
                                 if (ch == '-') ch = '_';
                             return s;
                         });

}  // namespace
}  // namespace lcx
