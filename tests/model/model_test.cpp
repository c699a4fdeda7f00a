// Hyper-parameters, weight binding and its errors, and a forward pass whose logits can be
// worked out by hand.
#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "backend/backend.h"
#include "common/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "test_support.h"

namespace lcx {
namespace {

using gguf::Value;

// A one-layer llama in memory: n_embd 8, 2 heads of 4, 1 KV head, FFN 16, vocab 10.
// Weights are zero except the norms (1) and the token embedding (row i = e_i for i < 8).
struct TinyLlama {
    std::string arch = "llama";
    bool with_output = false;
    std::map<std::string, std::vector<int64_t>> shape_override;
    std::vector<std::string> omit;
    std::vector<std::pair<std::string, Value>> extra;

    std::vector<uint8_t> bytes() const {
        gguf::GgufWriter w;
        w.add("general.architecture", Value{arch});
        auto u32 = [](uint32_t x) { return Value{x}; };
        w.add(arch + ".context_length", u32(64));
        w.add(arch + ".embedding_length", u32(8));
        w.add(arch + ".block_count", u32(1));
        w.add(arch + ".feed_forward_length", u32(16));
        w.add(arch + ".attention.head_count", u32(2));
        w.add(arch + ".attention.head_count_kv", u32(1));
        w.add(arch + ".attention.layer_norm_rms_epsilon", Value{1e-5f});
        for (const auto& [k, v] : extra) w.add(k, v);
        auto tensor = [&](const std::string& name, std::vector<int64_t> shape, float fill,
                          bool identity = false) {
            for (const auto& o : omit)
                if (o == name) return;
            if (auto it = shape_override.find(name); it != shape_override.end()) shape = it->second;
            int64_t n = 1;
            for (int64_t d : shape) n *= d;
            std::vector<float> data(size_t(n), fill);
            if (identity)
                for (int64_t i = 0; i < shape[0] && i < shape[1]; ++i)
                    data[size_t(i * shape[0] + i)] = 1.0f;
            w.add_tensor(
                name, DType::F32, shape,
                {reinterpret_cast<const uint8_t*>(data.data()), data.size() * sizeof(float)});
        };
        tensor("token_embd.weight", {8, 10}, 0.0f, /*identity=*/true);
        tensor("output_norm.weight", {8}, 1.0f);
        if (with_output) tensor("output.weight", {8, 10}, 0.0f);
        tensor("blk.0.attn_norm.weight", {8}, 1.0f);
        tensor("blk.0.attn_q.weight", {8, 8}, 0.0f);
        tensor("blk.0.attn_k.weight", {8, 4}, 0.0f);
        tensor("blk.0.attn_v.weight", {8, 4}, 0.0f);
        tensor("blk.0.attn_output.weight", {8, 8}, 0.0f);
        tensor("blk.0.ffn_norm.weight", {8}, 1.0f);
        tensor("blk.0.ffn_gate.weight", {8, 16}, 0.0f);
        tensor("blk.0.ffn_up.weight", {8, 16}, 0.0f);
        tensor("blk.0.ffn_down.weight", {16, 8}, 0.0f);
        return w.to_bytes();
    }
    std::shared_ptr<const Model> load() const {
        return Model::from_gguf(gguf::GgufFile::from_memory(bytes(), true, "tiny"));
    }
};

std::string load_error(const TinyLlama& t) {
    try {
        t.load();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(Model, Stories260KHyperParameters) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    auto m = Model::load(path);
    const HParams& hp = m->hparams();
    // The values of the model card (shared/README.md).
    EXPECT_EQ(hp.arch, "llama");
    EXPECT_EQ(hp.n_embd, 64);
    EXPECT_EQ(hp.n_layer, 5);
    EXPECT_EQ(hp.n_head, 8);
    EXPECT_EQ(hp.n_head_kv, 4);
    EXPECT_EQ(hp.head_dim, 8);
    EXPECT_EQ(hp.n_ff, 172);
    EXPECT_EQ(hp.n_vocab, 512);
    EXPECT_EQ(hp.n_ctx_train, 2048);
    EXPECT_EQ(hp.n_rot, 8);
    EXPECT_FLOAT_EQ(hp.norm_eps, 1e-5f);
    EXPECT_FLOAT_EQ(hp.rope_freq_base, 10000.0f);
    EXPECT_FLOAT_EQ(hp.rope_freq_scale, 1.0f);
    EXPECT_EQ(hp.rope_mode, RopeMode::Normal);
    EXPECT_FALSE(m->weights().tied_output);
    EXPECT_EQ(m->weights().layers.size(), 5u);
}

TEST(Model, TiedEmbeddingsWhenOutputIsAbsent) {
    TinyLlama t;
    auto m = t.load();
    EXPECT_TRUE(m->weights().tied_output);
    EXPECT_EQ(m->weights().output.data(), m->weights().tok_embd.data());
    t.with_output = true;
    EXPECT_FALSE(t.load()->weights().tied_output);
}

TEST(Model, DefaultsAndOptionalKeys) {
    TinyLlama t;
    auto hp = t.load()->hparams();
    EXPECT_EQ(hp.head_dim, 4);  // n_embd / n_head
    EXPECT_EQ(hp.n_rot, 4);
    EXPECT_EQ(hp.n_vocab, 10);
    t.extra = {{"llama.rope.scaling.type", Value{std::string("linear")}},
               {"llama.rope.scaling.factor", Value{4.0f}},
               {"llama.rope.freq_base", Value{500000.0f}}};
    hp = t.load()->hparams();
    EXPECT_FLOAT_EQ(hp.rope_freq_scale, 0.25f);
    EXPECT_FLOAT_EQ(hp.rope_freq_base, 500000.0f);
}

TEST(Model, ErrorsNameWhatIsWrong) {
    TinyLlama unknown;
    unknown.arch = "mamba";
    const std::string e1 = load_error(unknown);
    EXPECT_NE(e1.find("mamba"), std::string::npos) << e1;
    EXPECT_NE(e1.find("llama"), std::string::npos) << e1;

    TinyLlama missing;
    missing.omit = {"blk.0.ffn_down.weight"};
    const std::string e2 = load_error(missing);
    EXPECT_NE(e2.find("blk.0.ffn_down.weight"), std::string::npos) << e2;

    TinyLlama wrong;
    wrong.shape_override["blk.0.attn_k.weight"] = {8, 8};
    const std::string e3 = load_error(wrong);
    EXPECT_NE(e3.find("blk.0.attn_k.weight"), std::string::npos) << e3;
    EXPECT_NE(e3.find("[8, 4]"), std::string::npos) << e3;

    TinyLlama bad_heads;
    bad_heads.extra = {{"llama.attention.head_count_kv", Value{uint32_t(3)}}};
    EXPECT_NE(load_error(bad_heads).find("head_count_kv"), std::string::npos);
}

TEST(Model, BlocksCrossingRowsAreRefused) {
    LCX_REQUIRE_DATA(path, "models/tinyllamas-stories-260k-q8_0.gguf");
    try {
        Model::load(path);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("ffn_down"), std::string::npos) << e.what();
    }
}

// With zero attention and FFN weights the residual stream is the embedding e_i; the final
// RMS norm scales it to e_i / sqrt(1/8 + eps), and the tied output gives that value at
// token i and 0 elsewhere.
TEST(Model, ForwardPassOfAnIdentityModel) {
    auto m = TinyLlama{}.load();
    auto be = make_cpu_backend(1);
    Workspace ws = m->make_workspace(*be, 4);
    KvTensors kv;
    kv.k.push_back(be->alloc(DType::F32, {4, 8, 1}));
    kv.v.push_back(be->alloc(DType::F32, {4, 8, 1}));
    const std::vector<int32_t> tokens{3, 5, 9}, positions{0, 1, 2}, outputs{0, 1, 2};
    const std::vector<int32_t> kv_pos{0, 1, 2};
    ForwardBatch fb;
    fb.tokens = tokens;
    fb.positions = positions;
    fb.outputs = outputs;
    fb.groups.push_back({0, 3, 0, 0, kv_pos});
    m->forward(*be, fb, kv, ws);
    const float expect = 1.0f / std::sqrt(1.0f / 8.0f + 1e-5f);
    for (int row = 0; row < 2; ++row) {
        const float* l = reinterpret_cast<const float*>(ws.logits.row(row));
        for (int j = 0; j < 10; ++j)
            EXPECT_NEAR(l[j], j == tokens[size_t(row)] ? expect : 0.0f, 1e-4) << row << " " << j;
    }
    // Token 9 has a zero embedding row: the norm of zero is zero.
    const float* l = reinterpret_cast<const float*>(ws.logits.row(2));
    for (int j = 0; j < 10; ++j) EXPECT_NEAR(l[j], 0.0f, 1e-6);
}

// Loaded for a backend with packed kernels, the weights only matmul reads are packed and
// the embedding (read by row) is not; the weights' values are unchanged.
TEST(Model, LoadForABackendPacksTheMatmulWeights) {
    LCX_REQUIRE_DATA(path, "models/zoo/zoo-Q4_0.gguf");
    if (!cpu_path_supported(CpuPath::Avx2)) GTEST_SKIP() << "avx2 not supported here";
    auto be = make_cpu_backend(1, {CpuPath::Avx2});
    const auto plain = Model::load(path);
    const auto packed = Model::load(path, be.get());
    const ModelWeights& a = plain->weights();
    const ModelWeights& b = packed->weights();
    EXPECT_EQ(a.layers[0].wq.type(), DType::Q4_0);
    EXPECT_EQ(b.tok_embd.type(), DType::Q4_0);
    EXPECT_FALSE(b.tied_output);
    EXPECT_EQ(b.output.type(), DType::Q4_0_R8);
    for (const LayerWeights& l : b.layers)
        for (const Tensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
            EXPECT_EQ(t->type(), DType::Q4_0_R8) << t->name();
            EXPECT_FALSE(t->name().empty());
        }
    // The norms move off the file with the packed weights (the file's pages around them
    // are released); a copy has the file's bytes.
    const auto same_bytes = [](const Tensor& x, const Tensor& y) {
        return x.n_bytes() == y.n_bytes() && std::memcmp(x.data(), y.data(), x.n_bytes()) == 0;
    };
    EXPECT_TRUE(same_bytes(a.output_norm, b.output_norm));
    for (size_t i = 0; i < b.layers.size(); ++i) {
        EXPECT_TRUE(same_bytes(a.layers[i].attn_norm, b.layers[i].attn_norm));
        EXPECT_TRUE(same_bytes(a.layers[i].ffn_norm, b.layers[i].ffn_norm));
    }
    // Whether t lies in the file mapping of the model w, which starts where w's token
    // embedding (always a view of the file) says by its file offset.
    const gguf::GgufFile file = gguf::GgufFile::open(path);
    const auto in_file = [&](const ModelWeights& w, const Tensor& t) {
        const auto* map = static_cast<const uint8_t*>(w.tok_embd.data()) - file.data_offset() -
                          file.find_tensor("token_embd.weight")->offset;
        const auto* p = static_cast<const uint8_t*>(t.data());
        return p >= map && p < map + file.file_size();
    };
    EXPECT_TRUE(in_file(a, a.output_norm));
    EXPECT_TRUE(in_file(a, a.layers[0].attn_norm));
    EXPECT_FALSE(in_file(b, b.output_norm));
    EXPECT_FALSE(in_file(b, b.layers[0].attn_norm));
    // Same values: the packed weight dequantizes to the file's.
    const Tensor& wa = a.layers[1].ffn_down;
    const Tensor& wb = b.layers[1].ffn_down;
    ASSERT_EQ(wa.shape(), wb.shape());
    Tensor fa = Tensor::zeros(DType::F32, {wa.ne(0), wa.ne(1)});
    Tensor fb = Tensor::zeros(DType::F32, {wa.ne(0), wa.ne(1)});
    be->dequantize(wa, fa);
    be->dequantize(wb, fb);
    EXPECT_EQ(0, std::memcmp(fa.data(), fb.data(), fa.n_bytes()));
    // A backend that asks for no packing leaves the file's layout.
    CpuBackendOptions off;
    off.path = CpuPath::Avx2;
    off.repack = false;
    auto be_off = make_cpu_backend(1, off);
    EXPECT_EQ(Model::load(path, be_off.get())->weights().layers[0].wq.type(), DType::Q4_0);
}

}  // namespace
}  // namespace lcx
