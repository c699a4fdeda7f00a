// libFuzzer target: arbitrary bytes as the body of the server's request parsers, with
// stories260K's vocabulary (checks in request_parser_check.h). A failed check, an
// exception other than ApiError, a crash or a sanitizer report is a bug.
//
// The vocabulary is read from the source tree (LCX_SOURCE_DIR).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "gguf/gguf_file.h"
#include "request_parser_check.h"
#include "vocab/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const lcx::Vocab vocab = lcx::Vocab::from_gguf(
        lcx::gguf::GgufFile::open(std::string(LCX_SOURCE_DIR) + "/models/stories260K.gguf"));
    const std::string failed = lcx::fuzz::check_request_parser(vocab, data, size);
    if (!failed.empty()) {
        std::fprintf(stderr, "request_parser_fuzz: %s\n", failed.c_str());
        __builtin_trap();
    }
    return 0;
}
