// Replays tokenizer_fuzz's seeds and every input in fuzz/regressions/tokenizer_fuzz/
// (inputs that once failed) through the fuzz target's own checks.
#include <gtest/gtest.h>

#include <filesystem>

#include "../../fuzz/tokenizer_check.h"
#include "gguf/gguf_file.h"
#include "test_support.h"

namespace lcx {
namespace {

namespace fs = std::filesystem;

TEST(TokenizerFuzzReplay, SeedsAndRegressionsPassTheFuzzChecks) {
    const fs::path root = fs::path(LCX_TEST_DATA).parent_path().parent_path();
    std::vector<Vocab> vocabs;
    for (const char* rel : fuzz::kTokenizerFuzzVocabs) {
        if (!fs::exists(root / rel)) GTEST_SKIP() << rel << " not found";
        vocabs.push_back(Vocab::from_gguf(gguf::GgufFile::open(root / rel)));
    }
    int n = 0;
    for (const char* dir : {"fuzz/seeds/tokenizer", "fuzz/regressions/tokenizer_fuzz"}) {
        if (!fs::is_directory(root / dir)) continue;
        for (const auto& e : fs::directory_iterator(root / dir)) {
            if (!e.is_regular_file()) continue;
            SCOPED_TRACE(e.path().string());
            const std::vector<uint8_t> bytes = test::read_file(e.path());
            EXPECT_EQ(fuzz::check_tokenizer(vocabs, bytes.data(), bytes.size()), "");
            ++n;
        }
    }
    EXPECT_GT(n, 0) << "no seeds under " << root / "fuzz";
}

}  // namespace
}  // namespace lcx
