// Tokenizer throughput at 1 KB, 100 KB and 1 MB of input, for SPM (LLaMA-2's 32000-token
// vocabulary) and byte-level BPE (GPT-2's vocabulary, with the gpt-2 and LLaMA-3
// pre-tokenizers). Run from the repository root so ../shared/data is found.
//
// The text is generated from a fixed seed: English-like words from random syllables
// (so the per-call word cache sees a realistic share of new words), punctuation,
// numbers, line breaks and some non-Latin script.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "gguf/gguf_file.h"
#include "vocab/vocab.h"

namespace {

std::string make_text(size_t n_bytes) {
    static const char* kSyllables[] = {"ka",  "lo", "the",  "an", "ing", "ver", "mo", "ri",
                                       "sta", "pe", "tion", "un", "qu",  "ble", "ex", "or"};
    static const char* kExtra[] = {", ",
                                   ". ",
                                   "! ",
                                   "? ",
                                   "\n",
                                   "\n\n",
                                   " 42 ",
                                   " 2024 ",
                                   " \xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 ",
                                   " \xE4\xBD\xA0\xE5\xA5\xBD ",
                                   " don't ",
                                   " (x) "};
    std::mt19937 rng(42);
    std::string s;
    s.reserve(n_bytes + 32);
    while (s.size() < n_bytes) {
        const int n_syl = 1 + int(rng() % 4);
        for (int i = 0; i < n_syl; ++i) s += kSyllables[rng() % std::size(kSyllables)];
        if (rng() % 6 == 0) {
            s += kExtra[rng() % std::size(kExtra)];
        } else {
            s += ' ';
        }
    }
    s.resize(n_bytes);
    // Cut back to a character boundary.
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
    return s;
}

const lcx::Vocab* vocab(const std::string& name) {
    static std::map<std::string, std::unique_ptr<lcx::Vocab>> cache;
    auto& slot = cache[name];
    if (!slot) {
        for (const char* root : {"tests/data/vocab/", "../shared/data/vocab/"}) {
            const std::filesystem::path p = std::string(root) + "ggml-vocab-" + name + ".gguf";
            if (std::filesystem::exists(p)) {
                slot = std::make_unique<lcx::Vocab>(
                    lcx::Vocab::from_gguf(lcx::gguf::GgufFile::open(p)));
                break;
            }
        }
    }
    return slot.get();
}

void run(benchmark::State& state, const char* name) {
    const lcx::Vocab* v = vocab(name);
    if (!v) {
        state.SkipWithError("vocabulary file not found (run from the repository root)");
        return;
    }
    const std::string text = make_text(size_t(state.range(0)));
    size_t n_tokens = 0;
    for (auto _ : state) {
        auto ids = v->tokenize(text, true, false);
        n_tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
    state.counters["tokens"] = double(n_tokens);
}

void BM_TokenizeSpmLlama2(benchmark::State& s) { run(s, "llama-spm"); }
void BM_TokenizeBpeGpt2(benchmark::State& s) { run(s, "gpt-2"); }
void BM_TokenizeBpeLlama3Pre(benchmark::State& s) { run(s, "gpt2-pre-llama-bpe"); }

void BM_DetokenizeBpeGpt2(benchmark::State& state) {
    const lcx::Vocab* v = vocab("gpt-2");
    if (!v) {
        state.SkipWithError("vocabulary file not found (run from the repository root)");
        return;
    }
    const auto ids = v->tokenize(make_text(size_t(state.range(0))), false, false);
    for (auto _ : state) {
        auto text = v->detokenize(ids);
        benchmark::DoNotOptimize(text.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(ids.size()));
}

}  // namespace

BENCHMARK(BM_TokenizeSpmLlama2)
    ->Arg(1 << 10)
    ->Arg(100 << 10)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizeBpeGpt2)
    ->Arg(1 << 10)
    ->Arg(100 << 10)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizeBpeLlama3Pre)
    ->Arg(1 << 10)
    ->Arg(100 << 10)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DetokenizeBpeGpt2)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
