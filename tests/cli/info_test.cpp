// `llama-cxx info` run as a process on real files; what it reports is checked against
// facts about those files stated independently (shared/README.md, the models' own docs).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "gguf/gguf_writer.h"
#include "test_support.h"

namespace {

// 'path' for the shell (built by appending: GCC 12 warns falsely on "'" + string).
std::string quoted(const std::filesystem::path& path) {
    std::string s = "'";
    s += path.string();
    s += "'";
    return s;
}

lcx::test::RunResult run_info(const std::string& args) {
    std::string cmd = "info ";  // appended, not "info " + args: GCC 12 warns falsely there
    cmd += args;
    return lcx::test::run_binary(cmd);
}

nlohmann::json info_json(const std::filesystem::path& path) {
    auto r = run_info("--json '" + path.string() + "'");
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out);
}

const nlohmann::json* find_by(const nlohmann::json& arr, const char* field,
                              const std::string& value) {
    for (const auto& e : arr)
        if (e[field] == value) return &e;
    return nullptr;
}

TEST(Info, Stories260KJson) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    const auto j = info_json(path);
    EXPECT_EQ(j["version"], 3);
    EXPECT_EQ(j["alignment"], 32);
    const auto& hp = j["hparams"];
    EXPECT_EQ(hp["architecture"], "llama");
    EXPECT_EQ(hp["n_embd"], 64);
    EXPECT_EQ(hp["n_layer"], 5);
    EXPECT_EQ(hp["n_head"], 8);
    EXPECT_EQ(hp["n_head_kv"], 4);
    EXPECT_EQ(hp["head_dim"], 8);
    EXPECT_EQ(hp["n_ff"], 172);
    EXPECT_EQ(hp["n_ctx_train"], 2048);
    EXPECT_EQ(hp["n_vocab"], 512);
    // 1e-5 stored as f32; compare at f32 precision.
    EXPECT_FLOAT_EQ(hp["norm_eps"].get<float>(), 1e-5f);
    EXPECT_EQ(hp["rope_freq_base"].get<double>(), 10000.0);

    // Parameters from the architecture alone: embedding and output 64x512 each, output
    // norm 64, and per layer q,o 64x64, k,v 64x32, gate,up,down 64x172, two norms of 64.
    const int64_t per_layer = 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 172 + 2 * 64;
    EXPECT_EQ(j["totals"]["parameters"], 2 * 64 * 512 + 64 + 5 * per_layer);
    EXPECT_EQ(j["totals"]["bits_per_weight"], 32.0);  // all F32
    EXPECT_EQ(j["totals"]["tensors_by_type"], (nlohmann::json{{"F32", 48}}));

    const auto* emb = find_by(j["tensors"], "name", "token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ((*emb)["type"], "F32");
    EXPECT_EQ((*emb)["shape"], (nlohmann::json{64, 512}));
    EXPECT_EQ((*emb)["bytes"], 64 * 512 * 4);
    EXPECT_EQ((*emb)["offset"].get<uint64_t>() % 32, 0u);
    EXPECT_NE(find_by(j["tensors"], "name", "output.weight"), nullptr);

    const auto* tokens = find_by(j["metadata"], "key", "tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ((*tokens)["type"], "arr");
    EXPECT_EQ((*tokens)["elem_type"], "str");
    EXPECT_EQ((*tokens)["length"], 512);
    EXPECT_EQ((*tokens)["truncated"], true);
    EXPECT_EQ((*tokens)["value"][1], "<s>");  // SentencePiece BOS
}

TEST(Info, Stories260KText) {
    LCX_REQUIRE_DATA(path, "models/stories260K.gguf");
    auto r = run_info(quoted(path));
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* s :
         {"GGUF version: 3", "llama.embedding_length", "token_embd.weight", "[64, 512]",
          "arr[str,512]", "hyper-parameters (llama)", "n_layer", "F32: 48"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(Info, LlamaTinyRandomF16WithFullVocab) {
    LCX_REQUIRE_DATA(path, "models/llama-2-tiny-random.gguf");
    const auto j = info_json(path);
    EXPECT_EQ(j["hparams"]["n_vocab"], 32000);
    EXPECT_EQ(j["hparams"]["n_embd"], 8);
    EXPECT_EQ(j["hparams"]["n_layer"], 1);
    EXPECT_TRUE(j["totals"]["tensors_by_type"].contains("F16"));
}

TEST(Info, ZooQ4_0) {
    LCX_REQUIRE_DATA(path, "models/zoo/zoo-Q4_0.gguf");
    const auto j = info_json(path);
    EXPECT_EQ(j["hparams"]["n_embd"], 256);
    EXPECT_EQ(j["hparams"]["n_layer"], 2);
    EXPECT_EQ(j["hparams"]["n_head"], 4);
    EXPECT_EQ(j["hparams"]["n_head_kv"], 2);
    EXPECT_EQ(j["hparams"]["n_ff"], 768);
    const auto* q = find_by(j["tensors"], "name", "blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ((*q)["type"], "Q4_0");
    EXPECT_EQ((*q)["shape"], (nlohmann::json{256, 256}));
    EXPECT_EQ((*q)["bytes"], 256 * 256 / 32 * 18);  // Q4_0: 18 bytes per 32 weights
}

TEST(Info, OtherArchitectures) {
    LCX_REQUIRE_DATA(qwen2, "models/arch/arch-qwen2.gguf");
    EXPECT_EQ(info_json(qwen2)["hparams"]["rope_freq_base"], 1e6);
    LCX_REQUIRE_DATA(gemma2, "models/arch/arch-gemma2.gguf");
    const auto g = info_json(gemma2);
    EXPECT_EQ(g["hparams"]["architecture"], "gemma2");
    EXPECT_EQ(g["hparams"]["n_layer"], 26);
    EXPECT_EQ(g["hparams"]["n_embd"], 32);
    EXPECT_EQ(g["hparams"]["head_dim"], 16);  // attention width != n_embd
    EXPECT_EQ(g["hparams"]["sliding_window"], 8);
    EXPECT_EQ(g["hparams"]["attn_logit_softcap"], 5.0);
    EXPECT_EQ(g["hparams"]["final_logit_softcap"], 8.0);
}

TEST(Info, VersionOneFile) {
    LCX_REQUIRE_DATA(path, "models/tinyllamas-stories-260k-f32.gguf");
    const auto j = info_json(path);
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["hparams"]["n_embd"], 64);
}

TEST(Info, VocabOnlyFile) {
    LCX_REQUIRE_DATA(path, "vocab/ggml-vocab-gpt-2.gguf");
    const auto j = info_json(path);
    EXPECT_TRUE(j["tensors"].empty());
    EXPECT_EQ(j["totals"]["parameters"], 0);
    const auto* model = find_by(j["metadata"], "key", "tokenizer.ggml.model");
    ASSERT_NE(model, nullptr);
    EXPECT_EQ((*model)["value"], "gpt2");
    const auto* tokens = find_by(j["metadata"], "key", "tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ((*tokens)["length"], 50257);
}

TEST(Info, LongStringsAndArraysAreSummarised) {
    // A file made here with a 5000-byte chat template and a 1000-item array: the text
    // output must shorten both and say how long they really are.
    lcx::gguf::GgufWriter w;
    w.add("general.architecture", lcx::gguf::Value{std::string("llama")});
    w.add("tokenizer.chat_template", lcx::gguf::Value{std::string(5000, 'x')});
    lcx::gguf::Array arr{lcx::gguf::ValueType::UINT16, {}};
    for (int i = 0; i < 1000; ++i) arr.items.push_back(lcx::gguf::Value{uint16_t(i)});
    w.add("test.numbers", lcx::gguf::Value{arr});
    const auto path = std::filesystem::temp_directory_path() / "lcx_info_long.gguf";
    w.write(path);
    auto r = run_info(quoted(path));
    const auto j = info_json(path);
    std::filesystem::remove(path);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("(5000 bytes)"), std::string::npos);
    EXPECT_EQ(r.out.find(std::string(200, 'x')), std::string::npos);  // not printed whole
    EXPECT_NE(r.out.find("arr[u16,1000]"), std::string::npos);
    EXPECT_NE(r.out.find("[0, 1, 2, 3, 4, 5, 6, 7, ...]"), std::string::npos);
    EXPECT_LT(r.out.size(), 4000u);
    const auto* tmpl = find_by(j["metadata"], "key", "tokenizer.chat_template");
    ASSERT_NE(tmpl, nullptr);
    EXPECT_EQ((*tmpl)["length"], 5000);
    EXPECT_EQ((*tmpl)["truncated"], true);
    const auto* nums = find_by(j["metadata"], "key", "test.numbers");
    ASSERT_NE(nums, nullptr);
    EXPECT_EQ((*nums)["elem_type"], "u16");
    EXPECT_EQ((*nums)["length"], 1000);
}

TEST(Info, NotAGgufFile) {
    const auto path = std::filesystem::temp_directory_path() / "lcx_info_not_gguf.gguf";
    {
        std::ofstream out(path);
        out << "this is not a model\n";
    }
    auto r = run_info(quoted(path));
    std::filesystem::remove(path);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(path.string()), std::string::npos) << r.err;
}

TEST(Info, MissingFile) {
    auto r = run_info("/nonexistent/model.gguf");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
}

TEST(Info, InvalidQ8File) {
    LCX_REQUIRE_DATA(path, "models/tinyllamas-stories-260k-q8_0.gguf");
    auto r = run_info("--json '" + path.string() + "'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("ffn_down"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("block size"), std::string::npos) << r.err;
}

}  // namespace
