#include "model/synthetic_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/fp16.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace lcx {

namespace {

const SyntheticShape kShapes[] = {
    // Small enough for tests (a forward pass in microseconds), yet every dimension a
    // multiple of 256 so that every quantization type applies without fallbacks.
    {"tiny", 256, 2, 4, 2, 512, 256, 512},
    // SmolLM-135M: a model of real shape small enough to make and load in a test.
    {"smollm-135m", 576, 30, 9, 3, 1536, 2048, 49152},
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 2048, 32000},
    {"llama2-7b", 4096, 32, 32, 32, 11008, 4096, 32000},
};

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
    return h;
}

// Irwin-Hall sum of four 16-bit uniforms: close enough to a normal distribution for
// weights whose values only have to look like trained ones to the quantizers, and an
// order of magnitude cheaper than Box-Muller for a billion values.
void fill_normal(uint64_t seed, float stddev, float* out, size_t n) {
    constexpr float kSd = 37837.23f;  // 65536 / sqrt(3): sd of the sum of four uniforms
    const float scale = stddev / kSd;
    uint64_t st = seed;
    for (size_t i = 0; i < n; ++i) {
        const uint64_t r = splitmix64(st);
        const uint32_t s = uint32_t(r & 0xffff) + uint32_t((r >> 16) & 0xffff) +
                           uint32_t((r >> 32) & 0xffff) + uint32_t(r >> 48);
        out[i] = (float(s) - 131070.0f) * scale;
    }
}

// A minimal SentencePiece-style vocabulary: unknown, BOS, EOS, the 256 byte tokens and
// numbered filler pieces, so that files made without --vocab still load and tokenize.
void add_builtin_vocab(gguf::GgufWriter& w, int64_t n_vocab) {
    check(n_vocab >= 259 + 1, "a built-in vocabulary needs at least 260 tokens");
    gguf::Array tokens{gguf::ValueType::STRING, {}}, scores{gguf::ValueType::FLOAT32, {}},
        types{gguf::ValueType::INT32, {}};
    auto add = [&](std::string text, float score, int32_t type) {
        tokens.items.push_back(gguf::Value{std::move(text)});
        scores.items.push_back(gguf::Value{score});
        types.items.push_back(gguf::Value{type});
    };
    add("<unk>", 0.0f, 2);
    add("<s>", 0.0f, 3);
    add("</s>", 0.0f, 3);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        add(buf, 0.0f, 6);
    }
    add("\xe2\x96\x81", -1.0f, 1);  // U+2581, the SPM space
    for (int64_t i = int64_t(tokens.items.size()); i < n_vocab; ++i)
        add("\xe2\x96\x81w" + std::to_string(i), -float(i), 1);
    w.add("tokenizer.ggml.model", gguf::Value{std::string("llama")});
    w.add("tokenizer.ggml.tokens", gguf::Value{std::move(tokens)});
    w.add("tokenizer.ggml.scores", gguf::Value{std::move(scores)});
    w.add("tokenizer.ggml.token_type", gguf::Value{std::move(types)});
    w.add("tokenizer.ggml.unknown_token_id", gguf::Value{uint32_t(0)});
    w.add("tokenizer.ggml.bos_token_id", gguf::Value{uint32_t(1)});
    w.add("tokenizer.ggml.eos_token_id", gguf::Value{uint32_t(2)});
}

struct PlannedTensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    bool is_norm;
    int64_t n_elements() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
};

uint32_t file_type_of(DType t) {
    switch (t) {
        case DType::F32:
            return 0;
        case DType::F16:
            return 1;
        default:
            return 32;  // BF16
    }
}

}  // namespace

SyntheticShape synthetic_shape(std::string_view name) {
    for (const auto& s : kShapes)
        if (s.name == name) return s;
    std::string known;
    for (const auto& n : synthetic_shape_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown model shape '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> synthetic_shape_names() {
    std::vector<std::string> names;
    for (const auto& s : kShapes) names.push_back(s.name);
    return names;
}

SyntheticModelResult write_synthetic_model(const SyntheticModelOptions& opt,
                                           const std::filesystem::path& out) {
    check(opt.type == DType::F32 || opt.type == DType::F16 || opt.type == DType::BF16,
          "synthetic models are written in F32, F16 or BF16 (quantize them afterwards), not " +
              std::string(dtype_name(opt.type)));
    check(opt.stddev > 0 && opt.stddev < 1e3f,
          "the weight standard deviation must be in (0, 1000)");
    SyntheticShape sh = opt.shape;
    check(sh.n_embd > 0 && sh.n_layer > 0 && sh.n_head > 0 && sh.n_head_kv > 0 && sh.n_ff > 0 &&
              sh.n_ctx > 0,
          "synthetic model: every dimension must be positive");
    check(sh.n_embd % sh.n_head == 0 && sh.n_head % sh.n_head_kv == 0,
          "synthetic model: n_embd must divide into n_head heads, n_head into n_head_kv groups");

    gguf::GgufWriter w;
    w.add("general.architecture", gguf::Value{std::string("llama")});
    w.add("general.name", gguf::Value{"synthetic " + sh.name});
    w.add("llama.context_length", gguf::Value{uint32_t(sh.n_ctx)});
    w.add("llama.embedding_length", gguf::Value{uint32_t(sh.n_embd)});
    w.add("llama.block_count", gguf::Value{uint32_t(sh.n_layer)});
    w.add("llama.feed_forward_length", gguf::Value{uint32_t(sh.n_ff)});
    w.add("llama.rope.dimension_count", gguf::Value{uint32_t(sh.n_embd / sh.n_head)});
    w.add("llama.attention.head_count", gguf::Value{uint32_t(sh.n_head)});
    w.add("llama.attention.head_count_kv", gguf::Value{uint32_t(sh.n_head_kv)});
    w.add("llama.attention.layer_norm_rms_epsilon", gguf::Value{sh.norm_eps});
    w.add("llama.rope.freq_base", gguf::Value{sh.rope_freq_base});
    w.add("general.file_type", gguf::Value{file_type_of(opt.type)});

    if (!opt.vocab.empty()) {
        const auto vf = gguf::GgufFile::open(opt.vocab);
        const gguf::Array* toks = vf.get_array("tokenizer.ggml.tokens");
        check(toks != nullptr && !toks->items.empty(),
              opt.vocab.string() + ": no tokenizer.ggml.tokens array to copy");
        sh.n_vocab = int64_t(toks->items.size());
        for (const auto& kv : vf.metadata())
            if (kv.key.starts_with("tokenizer.")) w.add(kv.key, kv.value);
    } else {
        add_builtin_vocab(w, sh.n_vocab);
    }
    w.add("llama.vocab_size", gguf::Value{uint32_t(sh.n_vocab)});

    // llama.cpp's order: the non-layer tensors, then each layer's.
    const int64_t head_dim = sh.n_embd / sh.n_head;
    const int64_t n_embd_kv = head_dim * sh.n_head_kv;
    std::vector<PlannedTensor> plan;
    plan.push_back({"token_embd.weight", opt.type, {sh.n_embd, sh.n_vocab}, false});
    plan.push_back({"output_norm.weight", DType::F32, {sh.n_embd}, true});
    plan.push_back({"output.weight", opt.type, {sh.n_embd, sh.n_vocab}, false});
    for (int64_t l = 0; l < sh.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        plan.push_back({p + "attn_norm.weight", DType::F32, {sh.n_embd}, true});
        plan.push_back({p + "attn_q.weight", opt.type, {sh.n_embd, sh.n_embd}, false});
        plan.push_back({p + "attn_k.weight", opt.type, {sh.n_embd, n_embd_kv}, false});
        plan.push_back({p + "attn_v.weight", opt.type, {sh.n_embd, n_embd_kv}, false});
        plan.push_back({p + "attn_output.weight", opt.type, {sh.n_embd, sh.n_embd}, false});
        plan.push_back({p + "ffn_norm.weight", DType::F32, {sh.n_embd}, true});
        plan.push_back({p + "ffn_gate.weight", opt.type, {sh.n_embd, sh.n_ff}, false});
        plan.push_back({p + "ffn_up.weight", opt.type, {sh.n_embd, sh.n_ff}, false});
        plan.push_back({p + "ffn_down.weight", opt.type, {sh.n_ff, sh.n_embd}, false});
    }

    // Pass 1: the writer lays the file out with every tensor viewing one shared zero
    // buffer (as large as the largest tensor), so memory stays bounded.
    size_t max_bytes = 0;
    for (const auto& t : plan)
        max_bytes = std::max(max_bytes, size_t(t.n_elements()) * traits(t.type).block_bytes);
    const std::vector<uint8_t> zeros(max_bytes);
    SyntheticModelResult res;
    for (const auto& t : plan) {
        const size_t nb = size_t(t.n_elements()) * traits(t.type).block_bytes;
        w.add_tensor_view(t.name, t.type, t.shape, std::span<const uint8_t>(zeros.data(), nb));
        res.n_tensors++;
        res.n_params += t.n_elements();
        res.n_bytes += nb;
    }
    w.write(out);

    // Pass 2: fill each tensor in place, in chunks seeded by (seed, name, chunk) so the
    // bytes do not depend on the thread count.
    const auto file = gguf::GgufFile::open(out);
    const int fd = ::open(out.c_str(), O_WRONLY);
    check(fd >= 0, "cannot open " + out.string() + " for writing: " + std::strerror(errno));
    struct Job {
        const PlannedTensor* t;
        uint64_t file_offset;
        int64_t first, count;  // elements
    };
    constexpr int64_t kChunk = int64_t(1) << 20;
    std::vector<Job> jobs;
    for (const auto& t : plan) {
        const gguf::TensorInfo* info = file.find_tensor(t.name);
        check(info != nullptr, "internal: tensor " + t.name + " missing after writing");
        const uint64_t off = file.data_offset() + info->offset;
        if (t.is_norm) {
            jobs.push_back({&t, off, 0, t.n_elements()});
            continue;
        }
        for (int64_t e = 0; e < t.n_elements(); e += kChunk)
            jobs.push_back({&t, off, e, std::min(kChunk, t.n_elements() - e)});
    }
    std::atomic<size_t> next{0};
    std::mutex err_mu;
    std::string err;
    auto worker = [&] {
        std::vector<float> f(static_cast<size_t>(kChunk));
        std::vector<uint8_t> bytes(static_cast<size_t>(kChunk) * 4);
        for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
            const Job& job = jobs[j];
            const size_t n = size_t(job.count);
            if (job.t->is_norm) {
                std::fill_n(f.data(), n, 1.0f);
            } else {
                const uint64_t seed =
                    opt.seed * 0x9e3779b97f4a7c15ull ^ hash_name(job.t->name) ^ uint64_t(job.first);
                uint64_t st = seed;
                fill_normal(splitmix64(st), opt.stddev, f.data(), n);
            }
            const size_t esz = traits(job.t->type).block_bytes;
            if (job.t->type == DType::F32) {
                std::memcpy(bytes.data(), f.data(), n * 4);
            } else {
                auto* h = reinterpret_cast<uint16_t*>(bytes.data());
                if (job.t->type == DType::F16)
                    for (size_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(f[i]);
                else
                    for (size_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(f[i]);
            }
            const size_t len = n * esz;
            const off_t at = off_t(job.file_offset + uint64_t(job.first) * esz);
            size_t done = 0;
            while (done < len) {
                const ssize_t k = ::pwrite(fd, bytes.data() + done, len - done, at + off_t(done));
                if (k <= 0) {
                    std::lock_guard lock(err_mu);
                    err = "writing " + out.string() + ": " + std::strerror(errno);
                    next = jobs.size();
                    return;
                }
                done += size_t(k);
            }
        }
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < std::max(1, opt.n_threads); ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    const bool closed = ::close(fd) == 0;
    check(err.empty(), err);
    check(closed, "closing " + out.string() + ": " + std::strerror(errno));
    return res;
}

}  // namespace lcx
