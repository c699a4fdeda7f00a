// Reading real GGUF files (v1, v2, v3) and checking what we read against facts stated
// independently in shared/README.md (from the models' own documentation).
#include "gguf/gguf_file.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "test_support.h"

namespace lcx::gguf {
namespace {

TEST(GgufFile, ReadsStories260K) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(f.get_uint("llama.feed_forward_length"), 172u);
    EXPECT_EQ(f.get_uint("llama.block_count"), 5u);
    EXPECT_EQ(f.get_uint("llama.attention.head_count"), 8u);
    EXPECT_EQ(f.get_uint("llama.attention.head_count_kv"), 4u);
    EXPECT_EQ(f.get_uint("llama.context_length"), 2048u);
    // 1e-5 is stored as f32: compare at f32 precision.
    EXPECT_FLOAT_EQ(float(*f.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->elem_type, ValueType::STRING);
    EXPECT_EQ(tokens->items.size(), 512u);
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");

    const TensorInfo* emb = f.find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->type, DType::F32);
    EXPECT_EQ(emb->shape, (std::vector<int64_t>{64, 512}));
    EXPECT_EQ(emb->n_bytes, 64u * 512u * 4u);
    ASSERT_NE(f.find_tensor("output.weight"), nullptr);  // separate output matrix
    const TensorInfo* down = f.find_tensor("blk.4.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->shape, (std::vector<int64_t>{172, 64}));
    // 9 tensors per layer (2 norms, q k v o, gate up down) + embd, output norm, output.
    EXPECT_EQ(f.tensors().size(), 5u * 9u + 3u);

    Tensor t = f.tensor("token_embd.weight");
    EXPECT_EQ(t.ne(0), 64);
    EXPECT_EQ(t.ne(1), 512);
    EXPECT_EQ(t.name(), "token_embd.weight");
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % f.alignment(), 0u);
    EXPECT_EQ(t.data(), f.tensor_bytes(*emb).data());  // zero-copy view
}

// The file is mapped at a 2 MiB boundary, so each 2 MiB of the file can be mapped as one
// huge page: a byte at file offset o lies at an address congruent to o modulo 2 MiB.
TEST(GgufFile, MappingIsHugePageAligned) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    GgufFile f = GgufFile::open(path);
    constexpr uint64_t kHuge = uint64_t(2) << 20;
    for (const TensorInfo& info : f.tensors()) {
        const auto address = reinterpret_cast<uintptr_t>(f.tensor_bytes(info).data());
        EXPECT_EQ(address % kHuge, (f.data_offset() + info.offset) % kHuge) << info.name;
    }
}

TEST(GgufFile, ViewOutlivesFile) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    Tensor t;
    float first = 0;
    {
        GgufFile f = GgufFile::open(path);
        t = f.tensor("output_norm.weight");
        std::memcpy(&first, t.data(), 4);
    }
    float again = 0;
    std::memcpy(&again, t.data(), 4);  // the mapping must still be alive
    EXPECT_EQ(first, again);
}

TEST(GgufFile, ReadsVersion1) {
    LCX_REQUIRE_DATA(path, "models/tinyllamas-stories-260k-f32.gguf");
    GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.version(), 1u);
    EXPECT_EQ(f.get_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(f.get_uint("llama.block_count"), 5u);
    const TensorInfo* emb = f.find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->shape, (std::vector<int64_t>{64, 512}));
    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->items.size(), 512u);
}

TEST(GgufFile, SameWeightsInV1AndV3) {
    // The v1 and v3 files hold the same trained model: equal bytes for each tensor.
    LCX_REQUIRE_DATA(v1, "models/tinyllamas-stories-260k-f32.gguf");
    LCX_REQUIRE_DATA(v3, "models/stories260K.gguf");
    GgufFile a = GgufFile::open(v1), b = GgufFile::open(v3);
    const TensorInfo* ta = a.find_tensor("blk.0.attn_q.weight");
    const TensorInfo* tb = b.find_tensor("blk.0.attn_q.weight");
    ASSERT_TRUE(ta && tb);
    auto sa = a.tensor_bytes(*ta), sb = b.tensor_bytes(*tb);
    ASSERT_EQ(sa.size(), sb.size());
    EXPECT_EQ(std::memcmp(sa.data(), sb.data(), sa.size()), 0);
}

TEST(GgufFile, RefusesQ8RowsNotMultipleOfBlock) {
    LCX_REQUIRE_DATA(path, "models/tinyllamas-stories-260k-q8_0.gguf");
    try {
        GgufFile::open(path);
        FAIL() << "expected lcx::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("ffn_down"), std::string::npos) << msg;
        EXPECT_NE(msg.find("172"), std::string::npos) << msg;
        EXPECT_NE(msg.find("Q8_0"), std::string::npos) << msg;
    }
}

TEST(GgufFile, VocabOnlyFile) {
    LCX_REQUIRE_DATA(path, "vocab/ggml-vocab-gpt-2.gguf");
    GgufFile f = GgufFile::open(path);
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->items.size(), 50257u);  // GPT-2's vocabulary size
}

TEST(GgufFile, TypedGetters) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    GgufFile f = GgufFile::open(path);
    EXPECT_FALSE(f.get_string("no.such.key").has_value());
    EXPECT_EQ(f.get_array("no.such.key"), nullptr);
    EXPECT_THROW(f.get_string("llama.block_count"), Error);
    EXPECT_THROW(f.get_uint("general.architecture"), Error);
    EXPECT_THROW(f.get_bool("llama.block_count"), Error);
    EXPECT_THROW(f.get_array("general.architecture"), Error);
    EXPECT_THROW(f.tensor("no.such.tensor"), Error);
}

TEST(GgufFile, MissingFile) {
    try {
        GgufFile::open("/nonexistent/dir/model.gguf");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos);
    }
}

}  // namespace
}  // namespace lcx::gguf
