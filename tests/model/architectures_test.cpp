// The architectures beyond LLaMA: hyper-parameters and weights as each family reads them
// from the small models in models/arch/, and the errors for what is not supported.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "model/architecture.h"
#include "model/model.h"
#include "test_support.h"

namespace lcx {
namespace {

std::shared_ptr<const Model> load_arch(const std::string& name) {
    auto path = test::find_data("models/arch/arch-" + name + ".gguf");
    if (!path) return nullptr;
    return Model::load(*path);
}

#define LCX_LOAD_ARCH(var, name) \
    auto var = load_arch(name);  \
    if (!var) GTEST_SKIP() << "models/arch/arch-" << (name) << ".gguf not found"

TEST(Architectures, RegistryListsEveryFamily) {
    const auto names = supported_architectures();
    for (const char* n : {"llama", "qwen2", "gemma", "gemma2", "phi3", "starcoder2"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
        EXPECT_EQ(find_architecture(n).name(), n);
    }
    try {
        find_architecture("mamba");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("'mamba'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("gemma2"), std::string::npos) << msg;
        EXPECT_NE(msg.find("starcoder2"), std::string::npos) << msg;
    }
}

TEST(Architectures, Qwen2) {
    LCX_LOAD_ARCH(m, "qwen2");
    const HParams& hp = m->hparams();
    EXPECT_EQ(hp.rope_mode, RopeMode::NeoX);
    EXPECT_FLOAT_EQ(hp.rope_freq_base, 1e6f);
    EXPECT_FLOAT_EQ(hp.norm_eps, 1e-6f);
    EXPECT_TRUE(m->weights().tied_output);
    EXPECT_FALSE(m->weights().layers[0].bq.empty());
    EXPECT_FALSE(m->weights().layers[0].bv.empty());
}

TEST(Architectures, GemmaTakesHeadDimFromKeyLength) {
    LCX_LOAD_ARCH(m, "gemma");
    const HParams& hp = m->hparams();
    EXPECT_EQ(hp.rope_mode, RopeMode::NeoX);
    EXPECT_EQ(hp.head_dim, 32);
    EXPECT_TRUE(m->weights().tied_output);
}

TEST(Architectures, Gemma2) {
    LCX_LOAD_ARCH(m, "gemma2");
    const HParams& hp = m->hparams();
    EXPECT_EQ(hp.n_layer, 26);
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_EQ(hp.n_embd_q(), 64);  // attention width != n_embd (32)
    EXPECT_EQ(hp.sliding_window, 8);
    EXPECT_FLOAT_EQ(hp.attn_softcap, 5.0f);
    EXPECT_FLOAT_EQ(hp.final_softcap, 8.0f);
    EXPECT_FALSE(m->weights().layers[25].attn_post_norm.empty());
    EXPECT_FALSE(m->weights().layers[25].ffn_post_norm.empty());
}

TEST(Architectures, Phi3SplitsFusedMatricesIntoViews) {
    LCX_LOAD_ARCH(m, "phi3");
    const HParams& hp = m->hparams();
    EXPECT_EQ(hp.rope_mode, RopeMode::NeoX);
    const LayerWeights& l = m->weights().layers[1];
    ASSERT_FALSE(l.wqkv.empty());
    const size_t row = l.wqkv.row_size();
    const auto* base = static_cast<const uint8_t*>(l.wqkv.data());
    EXPECT_EQ(l.wq.data(), base);
    EXPECT_EQ(l.wk.data(), base + row * size_t(hp.n_embd_q()));
    EXPECT_EQ(l.wv.data(), base + row * size_t(hp.n_embd_q() + hp.n_embd_k()));
    EXPECT_EQ(l.wv.ne(1), hp.n_embd_v());
    EXPECT_EQ(l.ffn_gate.ne(1), hp.n_ff);
    EXPECT_EQ(
        static_cast<const uint8_t*>(l.ffn_up.data()),
        static_cast<const uint8_t*>(l.ffn_gate.data()) + l.ffn_gate.row_size() * size_t(hp.n_ff));
}

TEST(Architectures, StarCoder2HasBiasesEverywhere) {
    LCX_LOAD_ARCH(m, "starcoder2");
    EXPECT_EQ(m->hparams().rope_mode, RopeMode::NeoX);
    EXPECT_FLOAT_EQ(m->hparams().norm_eps, 1e-5f);
    const ModelWeights& w = m->weights();
    EXPECT_FALSE(w.tied_output);
    EXPECT_FALSE(w.output_norm_b.empty());
    for (const Tensor* t :
         {&w.layers[0].attn_norm_b, &w.layers[0].bq, &w.layers[0].bk, &w.layers[0].bv,
          &w.layers[0].bo, &w.layers[0].ffn_norm_b, &w.layers[0].ffn_up_b, &w.layers[0].ffn_down_b})
        EXPECT_FALSE(t->empty());
}

// Long-context Phi-3 files carry LongRoPE frequency factors, which are refused by name.
TEST(Architectures, Phi3LongRopeIsRefusedByName) {
    gguf::GgufWriter w;
    w.add("general.architecture", gguf::Value{std::string("phi3")});
    for (const char* k :
         {"context_length", "embedding_length", "block_count", "feed_forward_length"})
        w.add(std::string("phi3.") + k, gguf::Value{uint32_t(8)});
    w.add("phi3.attention.head_count", gguf::Value{uint32_t(2)});
    const std::vector<float> zeros(64, 0.0f);
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(zeros.data()),
                                         zeros.size() * sizeof(float));
    w.add_tensor("token_embd.weight", DType::F32, {8, 8}, bytes);
    w.add_tensor("rope_factors_long.weight", DType::F32, {4}, bytes.first(16));
    try {
        Model::from_gguf(gguf::GgufFile::from_memory(w.to_bytes(), true, "long-phi3"));
        FAIL() << "expected an error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("rope_factors_long.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("LongRoPE"), std::string::npos) << msg;
    }
}

}  // namespace
}  // namespace lcx
