// Replays request_parser_fuzz's seeds and every input in
// fuzz/regressions/request_parser_fuzz/ (inputs that once failed) through the fuzz
// target's own checks; no exception other than ApiError may escape.
#include <gtest/gtest.h>

#include <filesystem>

#include "../../fuzz/request_parser_check.h"
#include "gguf/gguf_file.h"
#include "test_support.h"

namespace lcx {
namespace {

namespace fs = std::filesystem;

TEST(RequestParserFuzzReplay, SeedsAndRegressionsPassTheFuzzChecks) {
    const fs::path root = fs::path(LCX_TEST_DATA).parent_path().parent_path();
    if (!fs::exists(root / "models/stories260K.gguf")) GTEST_SKIP() << "no stories260K.gguf";
    const Vocab vocab = Vocab::from_gguf(gguf::GgufFile::open(root / "models/stories260K.gguf"));
    int n = 0;
    for (const char* dir : {"fuzz/seeds/request_parser", "fuzz/regressions/request_parser_fuzz"}) {
        if (!fs::is_directory(root / dir)) continue;
        for (const auto& e : fs::directory_iterator(root / dir)) {
            if (!e.is_regular_file()) continue;
            SCOPED_TRACE(e.path().string());
            const std::vector<uint8_t> bytes = test::read_file(e.path());
            try {
                EXPECT_EQ(fuzz::check_request_parser(vocab, bytes.data(), bytes.size()), "");
            } catch (const std::exception& ex) {
                ADD_FAILURE() << "unexpected exception: " << ex.what();
            }
            ++n;
        }
    }
    EXPECT_GT(n, 0) << "no seeds under " << root / "fuzz";
}

}  // namespace
}  // namespace lcx
