// The synthetic model generator: the tiny shape written to a file loads as a LLaMA
// model with the expected tensors, shapes and metadata, its weights look like the
// distribution asked for, the bytes depend only on the seed, and a forward pass gives
// finite logits.
#include "model/synthetic_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "backend/backend.h"
#include "common/error.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "quant/quant.h"
#include "test_support.h"

namespace lcx {
namespace {

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("lcx_synthetic_test_" + std::to_string(::getpid()) + "_" + name);
}

struct TempFile {
    std::filesystem::path path;
    ~TempFile() { std::filesystem::remove(path); }
};

TEST(SyntheticModel, KnownShapes) {
    const SyntheticShape t = synthetic_shape("tinyllama-1.1b");
    EXPECT_EQ(t.n_embd, 2048);
    EXPECT_EQ(t.n_layer, 22);
    EXPECT_EQ(t.n_head, 32);
    EXPECT_EQ(t.n_head_kv, 4);
    EXPECT_EQ(t.n_ff, 5632);
    EXPECT_EQ(t.n_ctx, 2048);
    const SyntheticShape l = synthetic_shape("llama2-7b");
    EXPECT_EQ(l.n_embd, 4096);
    EXPECT_EQ(l.n_layer, 32);
    EXPECT_EQ(l.n_head_kv, 32);
    EXPECT_EQ(l.n_ff, 11008);
    EXPECT_THROW(synthetic_shape("gpt-5"), Error);
}

TEST(SyntheticModel, RejectsQuantizedTypes) {
    SyntheticModelOptions o;
    o.shape = synthetic_shape("tiny");
    o.type = DType::Q4_0;
    EXPECT_THROW(write_synthetic_model(o, temp_path("never.gguf")), Error);
}

TEST(SyntheticModel, TinyFileHasTheLlamaLayoutAndRuns) {
    TempFile f{temp_path("tiny.gguf")};
    SyntheticModelOptions o;
    o.shape = synthetic_shape("tiny");
    o.type = DType::F16;
    o.n_threads = 2;
    const auto r = write_synthetic_model(o, f.path);
    const SyntheticShape& s = o.shape;
    EXPECT_EQ(r.n_tensors, 3 + 9 * int(s.n_layer));

    const auto file = gguf::GgufFile::open(f.path);
    EXPECT_EQ(file.get_string("general.architecture"), "llama");
    EXPECT_EQ(file.get_int("llama.embedding_length"), s.n_embd);
    EXPECT_EQ(file.get_int("llama.block_count"), s.n_layer);
    EXPECT_EQ(file.get_int("llama.attention.head_count_kv"), s.n_head_kv);
    EXPECT_EQ(file.get_int("llama.feed_forward_length"), s.n_ff);
    EXPECT_EQ(file.get_int("general.file_type"), 1);
    ASSERT_NE(file.get_array("tokenizer.ggml.tokens"), nullptr);
    EXPECT_EQ(int64_t(file.get_array("tokenizer.ggml.tokens")->items.size()), s.n_vocab);

    const int64_t kv = s.n_embd / s.n_head * s.n_head_kv;
    const auto* k = file.find_tensor("blk.1.attn_k.weight");
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->type, DType::F16);
    EXPECT_EQ(k->shape, (std::vector<int64_t>{s.n_embd, kv}));
    const auto* down = file.find_tensor("blk.0.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->shape, (std::vector<int64_t>{s.n_ff, s.n_embd}));
    const auto* norm = file.find_tensor("blk.0.attn_norm.weight");
    ASSERT_NE(norm, nullptr);
    EXPECT_EQ(norm->type, DType::F32);

    // Norms are one; matrices have mean ~0 and the requested spread.
    const Tensor nt = file.tensor("blk.0.attn_norm.weight");
    for (int64_t i = 0; i < s.n_embd; ++i) EXPECT_EQ(nt.data_as<float>()[i], 1.0f);
    const auto qb = file.tensor_bytes(*file.find_tensor("blk.0.ffn_up.weight"));
    std::vector<float> q(qb.size() / 2);
    dequantize_row(DType::F16, qb.data(), q.data(), int64_t(q.size()));
    double sum = 0, sq = 0;
    for (float v : q) sum += v, sq += double(v) * v;
    const double mean = sum / double(q.size());
    const double sd = std::sqrt(sq / double(q.size()) - mean * mean);
    EXPECT_NEAR(mean, 0.0, 1e-3);
    EXPECT_NEAR(sd, 0.02, 0.001);

    const auto m = Model::load(f.path);
    EXPECT_EQ(m->hparams().n_vocab, s.n_vocab);
    EXPECT_FALSE(m->weights().tied_output);
    auto be = make_cpu_backend(2);
    Workspace ws = m->make_workspace(*be, 4);
    const int64_t head_dim = s.n_embd / s.n_head;
    KvTensors kvt;
    for (int64_t l = 0; l < s.n_layer; ++l) {
        kvt.k.push_back(be->alloc(DType::F16, {head_dim, 8, s.n_head_kv}));
        kvt.v.push_back(be->alloc(DType::F16, {head_dim, 8, s.n_head_kv}));
    }
    const std::vector<int32_t> tokens{1, 300, 511}, positions{0, 1, 2}, outputs{0, 1, 2};
    const std::vector<int32_t> kv_pos{0, 1, 2};
    ForwardBatch fb;
    fb.tokens = tokens;
    fb.positions = positions;
    fb.outputs = outputs;
    fb.groups.push_back({0, 3, 0, 0, kv_pos});
    m->forward(*be, fb, kvt, ws);
    for (int row = 0; row < 3; ++row) {
        const float* l = reinterpret_cast<const float*>(ws.logits.row(row));
        bool nonzero = false;
        for (int64_t j = 0; j < s.n_vocab; ++j) {
            ASSERT_TRUE(std::isfinite(l[j])) << "row " << row << " logit " << j;
            nonzero |= l[j] != 0.0f;
        }
        EXPECT_TRUE(nonzero) << "row " << row;
    }
}

TEST(SyntheticModel, SameSeedSameBytesAnyThreadCount) {
    TempFile a{temp_path("a.gguf")}, b{temp_path("b.gguf")}, c{temp_path("c.gguf")};
    SyntheticModelOptions o;
    o.shape = synthetic_shape("tiny");
    o.type = DType::F32;
    o.n_threads = 1;
    write_synthetic_model(o, a.path);
    o.n_threads = 3;
    write_synthetic_model(o, b.path);
    EXPECT_TRUE(test::read_file(a.path) == test::read_file(b.path));
    o.seed = 2;
    write_synthetic_model(o, c.path);
    EXPECT_FALSE(test::read_file(a.path) == test::read_file(c.path));
}

TEST(SyntheticModel, CopiesTheVocabularyOfAnotherFile) {
    LCX_REQUIRE_DATA(vocab, "models/stories260K.gguf");
    TempFile f{temp_path("vocab.gguf")};
    SyntheticModelOptions o;
    o.shape = synthetic_shape("tiny");
    o.shape.n_vocab = 7;  // replaced by the vocabulary's size
    o.vocab = vocab;
    write_synthetic_model(o, f.path);
    const auto file = gguf::GgufFile::open(f.path);
    const auto src = gguf::GgufFile::open(vocab);
    EXPECT_EQ(file.get_array("tokenizer.ggml.tokens")->items.size(),
              src.get_array("tokenizer.ggml.tokens")->items.size());
    EXPECT_EQ(file.find_tensor("token_embd.weight")->shape[1],
              int64_t(src.get_array("tokenizer.ggml.tokens")->items.size()));
}

}  // namespace
}  // namespace lcx
