// Replays every input in fuzz/regressions/ (inputs that once crashed, hung or misbehaved
// under gguf_reader_fuzz) and the seed corpus through the reader: each must either parse
// or throw lcx::Error, nothing else.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "test_support.h"

namespace lcx::gguf {
namespace {

namespace fs = std::filesystem;

void replay_dir(const fs::path& dir, int& n) {
    if (!fs::is_directory(dir)) return;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        SCOPED_TRACE(e.path().string());
        const std::vector<uint8_t> bytes = test::read_file(e.path());
        try {
            GgufFile f = GgufFile::from_memory(bytes, true, e.path().filename().string());
            for (const TensorInfo& t : f.tensors()) (void)f.tensor(t.name);
        } catch (const Error&) {
            // refused with a message: fine
        } catch (const std::exception& ex) {
            ADD_FAILURE() << "unexpected exception type: " << ex.what();
        }
        ++n;
    }
}

TEST(FuzzRegressions, ParseOrThrowLcxError) {
    const fs::path fuzz = fs::path(LCX_TEST_DATA).parent_path().parent_path() / "fuzz";
    int n = 0;
    replay_dir(fuzz / "regressions", n);
    replay_dir(fuzz / "corpus", n);
    if (n == 0) GTEST_SKIP() << "no inputs under " << fuzz;
}

}  // namespace
}  // namespace lcx::gguf
