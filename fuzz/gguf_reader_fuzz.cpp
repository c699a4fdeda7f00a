// libFuzzer target: arbitrary bytes through the GGUF reader. Every input must either
// parse or throw lcx::Error; anything else (crash, sanitizer report, other exception) is a
// bug. Parsed files also go through the writer and back, which must reproduce them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace {

// Touches every parsed byte so that out-of-bounds views show up under ASan.
uint64_t touch(const lcx::gguf::GgufFile& f) {
    uint64_t sum = 0;
    for (const auto& kv : f.metadata()) {
        sum += kv.key.size() + uint64_t(kv.value.type());
        (void)kv.value.as_int();
        (void)kv.value.as_uint();
        (void)kv.value.as_double();
    }
    for (const auto& ti : f.tensors()) {
        auto bytes = f.tensor_bytes(ti);
        if (!bytes.empty()) sum += bytes.front() + bytes.back();
        lcx::Tensor t = f.tensor(ti.name);
        sum += uint64_t(t.n_elements());
    }
    return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto f =
            lcx::gguf::GgufFile::from_memory(std::span<const uint8_t>(data, size), false, "<fuzz>");
        volatile uint64_t sink = touch(f);
        (void)sink;

        // Legal alignments go up to 1 GiB, but re-writing with one means writing that
        // much padding: correct, just too slow for fuzzing.
        if (f.alignment() > 65536) return 0;
        lcx::gguf::GgufWriter w;
        for (const auto& kv : f.metadata()) w.add(kv.key, kv.value);
        for (const auto& ti : f.tensors())
            w.add_tensor_view(ti.name, ti.type, ti.shape, f.tensor_bytes(ti));
        const std::vector<uint8_t> out = w.to_bytes();
        auto g = lcx::gguf::GgufFile::from_memory(out, false, "<rewritten>");
        if (g.metadata().size() != f.metadata().size() || g.tensors().size() != f.tensors().size())
            __builtin_trap();
        for (size_t i = 0; i < f.tensors().size(); ++i) {
            auto a = f.tensor_bytes(f.tensors()[i]);
            auto b = g.tensor_bytes(g.tensors()[i]);
            if (a.size() != b.size() || (a.size() && std::memcmp(a.data(), b.data(), a.size())))
                __builtin_trap();
        }
    } catch (const lcx::Error&) {
        // Rejected with a message: the expected outcome for malformed input.
    }
    return 0;
}
