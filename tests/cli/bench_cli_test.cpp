// `llama-cxx bench` and `llama-cxx make-model` end to end: the JSON report has one object
// per test with the documented keys and sane (positive, finite) values. Speed itself is
// never asserted.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "backend/backend.h"
#include "test_support.h"

namespace lcx {
namespace {

test::RunResult run(const std::string& args) { return test::run_binary(args); }

void expect_positive(const nlohmann::json& o, const char* key) {
    ASSERT_TRUE(o.contains(key)) << key;
    ASSERT_TRUE(o[key].is_number()) << key;
    const double v = o[key].get<double>();
    EXPECT_TRUE(std::isfinite(v) && v > 0) << key << " = " << v;
}

void check_report(const std::string& json_text, const std::string& model) {
    const auto j = nlohmann::json::parse(json_text);
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["test"], "pp8");
    EXPECT_EQ(j[1]["test"], "tg4");
    for (const auto& o : j) {
        EXPECT_EQ(o["model"], model);
        EXPECT_TRUE(o["type"].is_string() && !o["type"].get<std::string>().empty());
        EXPECT_EQ(o["threads"], 2);
        expect_positive(o, "tokens_per_s");
        ASSERT_TRUE(o["stddev"].is_number());
        EXPECT_GE(o["stddev"].get<double>(), 0.0);
        expect_positive(o, "bandwidth_gbs");
        expect_positive(o, "bytes_per_token");
        expect_positive(o, "rss_after_run_bytes");
        expect_positive(o, "rss_peak_bytes");
        EXPECT_GE(o["load_s"].get<double>(), 0.0);
    }
    EXPECT_FALSE(j[0].contains("bound_fraction"));
    expect_positive(j[1], "bound_fraction");
    // tg's fraction is its speed over the bound the bandwidth and bytes per token give.
    EXPECT_NEAR(j[1]["bound_fraction"].get<double>(),
                j[1]["tokens_per_s"].get<double>() * j[1]["bytes_per_token"].get<double>() /
                    (j[1]["bandwidth_gbs"].get<double>() * 1e9),
                1e-9);
}

TEST(CliBench, JsonReportOnTheBundledModel) {
    const auto r = run("bench -p 8 -n 4 -r 1 -t 2 --json --bandwidth-mib 256");
    ASSERT_EQ(r.status, 0) << r.out;
    check_report(r.out, "stories260K (bundled)");
    const auto j = nlohmann::json::parse(r.out);
    // The peak is the model's, not the bandwidth measurement's 256 MiB buffer.
    EXPECT_LT(j[0]["rss_peak_bytes"].get<double>(), 128.0 * (1 << 20));
    EXPECT_EQ(j[0]["type"], "F32");
    // stories260K (untied): every tensor but one embedding row is read per token.
    EXPECT_LT(j[1]["bytes_per_token"].get<uint64_t>(), j[1]["size_bytes"].get<uint64_t>());
}

TEST(CliBench, MakeModelThenBench) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("lcx_bench_cli_" + std::to_string(::getpid()) + ".gguf");
    const auto made = run("make-model --shape tiny --type F16 -o " + path.string());
    ASSERT_EQ(made.status, 0);
    const auto r =
        run("bench -m " + path.string() + " -p 8 -n 4 -r 2 -t 2 --json --bandwidth 10 --profile");
    std::filesystem::remove(path);
    ASSERT_EQ(r.status, 0) << r.out;
    check_report(r.out, path.filename().string());
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j[0]["type"], "F16");
    EXPECT_EQ(j[0]["bandwidth_gbs"], 10.0);
    EXPECT_EQ(j[1]["samples_tokens_per_s"].size(), 2u);
    // The profile splits the pass by operation; the FFN matmul is always there.
    ASSERT_TRUE(j[1].contains("profile"));
    EXPECT_TRUE(j[1]["profile"].contains("matmul ffn_down"));
}

// A model loaded for the packed kernels is never resident twice: each weight's file pages
// go as soon as it is packed. (Packing every weight before releasing any took the peak to
// twice the weights: 291 MiB here.)
TEST(CliBench, PeakResidentSetStaysNearTheWeights) {
    const auto dir = std::filesystem::temp_directory_path();
    const std::string stem = "lcx_bench_peak_" + std::to_string(::getpid());
    const auto f16 = dir / (stem + "-F16.gguf"), q8 = dir / (stem + "-Q8_0.gguf");
    ASSERT_EQ(run("make-model --shape smollm-135m --type F16 -o " + f16.string()).status, 0);
    const auto quantized = run("quantize " + f16.string() + " " + q8.string() + " Q8_0");
    std::filesystem::remove(f16);
    ASSERT_EQ(quantized.status, 0) << quantized.err;
    const auto r = run("bench -m " + q8.string() + " -p 8 -n 4 -r 1 -t 2 --json --bandwidth 10");
    std::filesystem::remove(q8);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const double weights = j[0]["size_bytes"].get<double>(),
                 kv = j[0]["kv_cache_bytes"].get<double>(),
                 peak = j[0]["rss_peak_bytes"].get<double>();
    EXPECT_GE(peak, j[0]["rss_after_run_bytes"].get<double>());
    // 165 MiB of weights; the rest of the process (code, libraries, activations) takes
    // some 20 MiB.
    EXPECT_LT(peak, weights + kv + 48.0 * (1 << 20))
        << "peak " << peak / (1 << 20) << " MiB, weights " << weights / (1 << 20) << " MiB";
}

// Q4_0 weights run packed by default and in the file's layout with --no-repack.
TEST(CliBench, PackedAndFileLayoutsBothRun) {
    LCX_REQUIRE_DATA(path, "models/zoo/zoo-Q4_0.gguf");
    for (const char* flag : {"", " --no-repack"}) {
        const auto r =
            run("bench -m " + path.string() + " -p 8 -n 4 -r 1 -t 2 --json --bandwidth 10" + flag);
        ASSERT_EQ(r.status, 0) << flag << r.out << r.err;
        check_report(r.out, path.filename().string());
        EXPECT_EQ(nlohmann::json::parse(r.out)[0]["type"], "Q4_0");
    }
}

// --f16-as-bf16 multiplies F16 weights in bf16 in prompts where the CPU can, and the report
// names it with the backend (the model's type stays F16: its weights are the file's).
TEST(CliBench, F16AsBf16IsNamedWithTheBackend) {
    LCX_REQUIRE_DATA(path, "models/zoo/zoo-F16.gguf");
    CpuBackendOptions o;
    o.f16_as_bf16 = true;
    const std::string backend = make_cpu_backend(2, o)->name();
    const auto r = run("bench -m " + path.string() +
                       " -p 64 -n 4 -r 1 -t 2 --json --bandwidth 10 --f16-as-bf16");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j[0]["type"], "F16");
    EXPECT_EQ(j[0]["backend"], backend);
    EXPECT_EQ(backend.find("f16-as-bf16") != std::string::npos, cpu_path_supported(CpuPath::Avx512))
        << backend;
}

// Lists, as llama-bench: one test per value, prompts first, in the order given.
TEST(CliBench, ListsOfPromptAndGenerationLengths) {
    const auto r = run("bench -p 8,4 -n 0,3 -r 1 -t 1 --json --bandwidth 10");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[0]["test"], "pp8");
    EXPECT_EQ(j[1]["test"], "pp4");
    EXPECT_EQ(j[2]["test"], "tg3");
    EXPECT_FALSE(j[1].contains("bound_fraction"));
    EXPECT_TRUE(j[2].contains("bound_fraction"));
}

// -t as a list, as llama-bench: every test once per thread count, in the order given, each
// on its own backend (a thread count of 0 is all cores).
TEST(CliBench, ListOfThreadCounts) {
    const auto r = run("bench -p 8 -n 3 -r 1 -t 1,2 --json --bandwidth 10");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 4u);
    const int threads[] = {1, 1, 2, 2};
    const char* tests[] = {"pp8", "tg3", "pp8", "tg3"};
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(j[i]["threads"], threads[i]) << i;
        EXPECT_EQ(j[i]["test"], tests[i]) << i;
        std::string want = "(";  // "(1 threads)"
        want += std::to_string(threads[i]);
        want += " thread";
        EXPECT_NE(j[i]["backend"].get<std::string>().find(want), std::string::npos)
            << j[i]["backend"];
    }
    EXPECT_EQ(run("bench -p 8 -n 0 -t 1,-2").status, 1);
}

// -d, as llama-bench: every test again with that many tokens already in the cache, named
// "pp8 @ d16"; a generation step then also reads the cached K and V of every earlier
// token, which its bytes per token (and so its bound) include.
TEST(CliBench, TestsAtDepth) {
    const auto r = run("bench -p 8 -n 4 -d 0,16 -r 1 -t 2 --json --bandwidth 10");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 4u);
    EXPECT_EQ(j[0]["test"], "pp8");
    EXPECT_EQ(j[1]["test"], "tg4");
    EXPECT_EQ(j[2]["test"], "pp8 @ d16");
    EXPECT_EQ(j[3]["test"], "tg4 @ d16");
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(j[i]["n_depth"], i < 2 ? 0 : 16);
        expect_positive(j[i], "tokens_per_s");
    }
    // stories260K's cache: 5 layers x (K + V) x 4 KV heads x 8 values x 2 bytes (f16) per
    // token.
    const double kv_per_token = 5 * 2 * 4 * 8 * 2;
    const double weights = j[0]["bytes_per_token"].get<double>();
    // tg4's steps read 1..4 cached tokens (2.5 on average), at depth 16 17..20.
    EXPECT_NEAR(j[1]["bytes_per_token"].get<double>(), weights + 2.5 * kv_per_token, 1.0);
    EXPECT_NEAR(j[3]["bytes_per_token"].get<double>(), weights + 18.5 * kv_per_token, 1.0);
    EXPECT_NEAR(j[3]["bound_fraction"].get<double>(),
                j[3]["tokens_per_s"].get<double>() * j[3]["bytes_per_token"].get<double>() / 10e9,
                1e-9);
}

TEST(CliBench, BadArgumentsFailCleanly) {
    EXPECT_EQ(run("bench -p 0 -n 0").status, 1);
    EXPECT_EQ(run("bench -p 8,-1").status, 1);
    EXPECT_NE(run("bench -p 8,x").status, 0);
    EXPECT_EQ(run("bench -r 0").status, 1);
    EXPECT_EQ(run("bench -d 4,-1").status, 1);
    EXPECT_EQ(run("bench -d 2000000000").status, 1);
    EXPECT_NE(run("make-model --shape nonsense -o /dev/null").status, 0);
    EXPECT_NE(run("make-model --shape tiny --type Q4_0 -o /dev/null").status, 0);
}

}  // namespace
}  // namespace lcx
