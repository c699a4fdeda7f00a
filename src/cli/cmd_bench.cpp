// `llama-cxx bench -m MODEL [-p 512] [-n 128] [-d 0] [-t N] [-r 5] [--json] [--profile]`:
// prompt processing (one batched decode of p tokens) and generation (n single-token
// decodes) speed, as llama-bench measures them, on an empty cache or (-d) after d tokens
// already in it, next to the machine's read bandwidth and the decode speed that bandwidth
// allows.
//
// --profile (or LCX_PROFILE=1) wraps the backend in a timer per operation, so the time of
// a pass splits into matmuls by weight role, attention, norms, rope and the rest, without
// touching the model or runtime code.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/bandwidth.h"
#include "common/error.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/context.h"

extern "C" const unsigned char lcx_bundled_model_begin[];
extern "C" const unsigned char lcx_bundled_model_end[];

namespace lcx::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A size from /proc/self/status in bytes ("VmRSS:" the resident set, "VmHWM:" its peak),
// or 0 where /proc is unavailable.
uint64_t status_bytes(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const size_t n = std::strlen(key);
    while (std::getline(in, line))
        if (line.compare(0, n, key) == 0)
            return std::strtoull(line.c_str() + n, nullptr, 10) * 1024;
    return 0;
}
uint64_t resident_bytes() { return status_bytes("VmRSS:"); }

// ---- per-operation profiling -----------------------------------------------------------

struct OpStat {
    double seconds = 0;
    int64_t calls = 0;
};

// "blk.12.ffn_up.weight" -> "ffn_up"; the role of a weight regardless of its layer.
std::string weight_role(const std::string& name) {
    std::string s = name;
    if (s.rfind("blk.", 0) == 0) {
        const size_t dot = s.find('.', 4);
        if (dot != std::string::npos) s = s.substr(dot + 1);
    }
    if (s.size() > 7 && s.ends_with(".weight")) s.resize(s.size() - 7);
    return s.empty() ? "?" : s;
}

class ProfilingBackend final : public Backend {
  public:
    explicit ProfilingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}

    void reset() { stats_.clear(); }
    const std::map<std::string, OpStat>& stats() const { return stats_; }

    std::string name() const override { return in_->name(); }
    bool is_available() const override { return in_->is_available(); }
    int n_threads() const override { return in_->n_threads(); }
    using Backend::alloc;
    Tensor alloc(DType type, std::span<const int64_t> shape) override {
        return in_->alloc(type, shape);
    }
    void add(const Tensor& a, const Tensor& b, Tensor& out) override {
        timed("add", [&] { in_->add(a, b, out); });
    }
    void mul(const Tensor& a, const Tensor& b, Tensor& out) override {
        timed("mul", [&] { in_->mul(a, b, out); });
    }
    void scale(const Tensor& a, float s, Tensor& out) override {
        timed("scale", [&] { in_->scale(a, s, out); });
    }
    void silu(const Tensor& a, Tensor& out) override {
        timed("silu", [&] { in_->silu(a, out); });
    }
    void gelu(const Tensor& a, Tensor& out) override {
        timed("gelu", [&] { in_->gelu(a, out); });
    }
    void softcap(const Tensor& a, float cap, Tensor& out) override {
        timed("softcap", [&] { in_->softcap(a, cap, out); });
    }
    void swiglu(const Tensor& g, const Tensor& u, Tensor& out) override {
        timed("swiglu", [&] { in_->swiglu(g, u, out); });
    }
    void geglu(const Tensor& g, const Tensor& u, Tensor& out) override {
        timed("geglu", [&] { in_->geglu(g, u, out); });
    }
    void softmax(const Tensor& a, Tensor& out, float s, bool causal) override {
        timed("softmax", [&] { in_->softmax(a, out, s, causal); });
    }
    void rms_norm(const Tensor& x, float eps, Tensor& out) override {
        timed("rms_norm", [&] { in_->rms_norm(x, eps, out); });
    }
    void layer_norm(const Tensor& x, float eps, const Tensor* w, const Tensor* b,
                    Tensor& out) override {
        timed("layer_norm", [&] { in_->layer_norm(x, eps, w, b, out); });
    }
    void rope(const Tensor& x, std::span<const int32_t> pos, const RopeParams& p,
              Tensor& out) override {
        timed("rope", [&] { in_->rope(x, pos, p, out); });
    }
    void get_rows(const Tensor& w, std::span<const int32_t> ids, Tensor& out) override {
        timed("get_rows", [&] { in_->get_rows(w, ids, out); });
    }
    void copy(const Tensor& src, Tensor& dst) override {
        timed("copy", [&] { in_->copy(src, dst); });
    }
    void store_rows(const Tensor& src, Tensor& dst, int64_t first_row) override {
        timed("store_rows (kv)", [&] { in_->store_rows(src, dst, first_row); });
    }
    void dequantize(const Tensor& w, Tensor& out) override {
        timed("dequantize", [&] { in_->dequantize(w, out); });
    }
    DType matmul_layout(DType type, int64_t n_rows, int64_t k) const override {
        return in_->matmul_layout(type, n_rows, k);
    }
    void matmul(const Tensor& w, const Tensor& x, Tensor& y) override {
        timed("matmul " + weight_role(w.name()), [&] { in_->matmul(w, x, y); });
    }
    void matmul_many(const Tensor& x, std::span<const MatmulTask> tasks) override {
        std::string key = "matmul ";
        for (size_t i = 0; i < tasks.size(); ++i)
            key += (i ? "+" : "") + weight_role(tasks[i].w ? tasks[i].w->name() : "");
        timed(key, [&] { in_->matmul_many(x, tasks); });
    }
    void matmul_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, Glu act,
                    Tensor& hidden, Tensor& up) override {
        timed("matmul " + weight_role(w_gate.name()) + "+" + weight_role(w_up.name()) +
                  (act == Glu::Silu ? " + swiglu" : " + geglu"),
              [&] { in_->matmul_glu(x, w_gate, w_up, act, hidden, up); });
    }
    void attention(const Tensor& q, const Tensor& k, const Tensor& v,
                   std::span<const int32_t> positions, const AttentionParams& p, Tensor& out,
                   std::span<const int32_t> kv_positions) override {
        timed("attention", [&] { in_->attention(q, k, v, positions, p, out, kv_positions); });
    }
    void parallel(const std::function<void(int, int)>& fn) override {
        timed("parallel (other)", [&] { in_->parallel(fn); });
    }

  private:
    template <class F>
    void timed(const std::string& key, F&& f) {
        const auto t0 = Clock::now();
        f();
        OpStat& s = stats_[key];
        s.seconds += seconds_since(t0);
        s.calls++;
    }

    std::unique_ptr<Backend> in_;
    std::map<std::string, OpStat> stats_;
};

// ---- the benchmark ---------------------------------------------------------------------

struct BenchArgs {
    std::string model_path;
    std::vector<int> n_prompt{512};  // one pp test per value (0: none)
    std::vector<int> n_gen{128};     // one tg test per value (0: none)
    std::vector<int> n_depth{0};     // every test once per value: tokens already cached
    std::vector<int> threads{0};     // one run of every test per value (0: all cores)
    int reps = 5;
    bool json = false;
    bool profile = false;
    CpuOptions cpu;
    double bandwidth_gbs = 0;  // > 0: skip the measurement (tests, repeated runs)
    int bandwidth_mib = 1024;  // buffer of the measurement; must dwarf the L3 cache
};

struct TestResult {
    std::string test;  // "pp512", "tg128", "tg128 @ d4096"
    int n_prompt = 0, n_gen = 0, n_depth = 0;
    uint64_t bytes_per_token = 0;  // tg: weights plus the KV cache a step reads, on average
    double bandwidth_gbs = 0;      // the read bandwidth its bound is taken from
    int threads = 0;
    std::string backend;
    std::vector<double> tokens_per_s;  // one per repetition
    double mean = 0, sd = 0;
    std::vector<std::pair<std::string, OpStat>> profile;  // sorted by time, per repetition
};

struct ModelFacts {
    std::string file;
    std::string desc;  // "llama 1.1B Q4_0"
    std::string type;  // "Q4_0", "Q4_K_M", ...
    uint64_t size_bytes = 0;
    int64_t n_params = 0;
    uint64_t bytes_per_token = 0;  // weight bytes a single-token decode reads
};

// llama.cpp's general.file_type ids (llama_ftype) for the mixes people bench.
std::string ftype_name(int64_t ft) {
    static const std::map<int64_t, const char*> kNames = {
        {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
        {8, "Q5_0"},    {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
        {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
        {18, "Q6_K"},   {21, "Q2_K_S"}, {25, "IQ4_NL"}, {30, "IQ4_XS"}, {32, "BF16"}};
    const auto it = kNames.find(ft);
    return it == kNames.end() ? "" : it->second;
}

std::string params_label(int64_t n) {
    char buf[32];
    if (n >= 1'000'000'000)
        std::snprintf(buf, sizeof buf, "%.2f B", double(n) / 1e9);
    else if (n >= 1'000'000)
        std::snprintf(buf, sizeof buf, "%.2f M", double(n) / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.2f K", double(n) / 1e3);
    return buf;
}

std::string size_label(uint64_t b) {
    char buf[32];
    if (b >= (uint64_t(1) << 30))
        std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1 << 30));
    else
        std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(1 << 20));
    return buf;
}

ModelFacts describe(const Model& m, const std::string& file) {
    ModelFacts f;
    f.file = file;
    const auto& gf = m.file();
    std::map<DType, uint64_t> bytes_by_type;
    for (const auto& t : gf.tensors()) {
        f.size_bytes += t.n_bytes;
        f.n_params += t.n_elements();
        if (t.shape.size() >= 2) bytes_by_type[t.type] += t.n_bytes;
        if (t.name == "token_embd.weight" && !m.weights().tied_output && !t.shape.empty() &&
            t.shape.size() >= 2)
            f.bytes_per_token += t.n_bytes / uint64_t(t.shape[1]);  // one row is looked up
        else
            f.bytes_per_token += t.n_bytes;
    }
    f.type = ftype_name(gf.get_int("general.file_type").value_or(-1));
    if (f.type.empty()) {
        DType best = DType::F32;
        uint64_t most = 0;
        for (const auto& [t, b] : bytes_by_type)
            if (b > most) most = b, best = t;
        f.type = std::string(dtype_name(best));
    }
    std::string label = params_label(f.n_params);
    label.erase(std::remove(label.begin(), label.end(), ' '), label.end());
    f.desc = m.hparams().arch + " " + label + " " + f.type;
    return f;
}

void mean_sd(TestResult& r) {
    const double n = double(r.tokens_per_s.size());
    double s = 0;
    for (double v : r.tokens_per_s) s += v;
    r.mean = s / n;
    double q = 0;
    for (double v : r.tokens_per_s) q += (v - r.mean) * (v - r.mean);
    r.sd = n > 1 ? std::sqrt(q / (n - 1)) : 0.0;
}

// Fills the cache with `depth` tokens (untimed), in batches of the context's size.
void fill_depth(Context& ctx, const std::vector<int32_t>& tokens) {
    ctx.clear();
    const size_t step = size_t(ctx.n_batch());
    for (size_t first = 0; first < tokens.size(); first += step) {
        const size_t n = std::min(step, tokens.size() - first);
        Batch batch;
        batch.add_sequence(std::span<const int32_t>(tokens.data() + first, n), int32_t(first), 0);
        ctx.decode(batch);
    }
}

// One repetition; returns seconds. pp: one batch of n_prompt tokens; tg: n_gen
// single-token decodes. Both start from a cache holding `depth` tokens (fill_depth) and
// nothing else: what an earlier repetition added is removed first.
double run_once(Context& ctx, const std::vector<int32_t>& tokens, bool prompt, int depth) {
    ctx.truncate(0, depth);
    Batch batch;
    const auto t0 = Clock::now();
    if (prompt) {
        batch.add_sequence(tokens, depth, 0);
        ctx.decode(batch);
    } else {
        for (size_t i = 0; i < tokens.size(); ++i) {
            batch.clear();
            batch.add(tokens[i], depth + int32_t(i), 0, true);
            ctx.decode(batch);
        }
    }
    return seconds_since(t0);
}

void print_profile(const TestResult& r, double seconds_per_rep) {
    std::fprintf(stderr, "\nprofile of %s (per repetition: %.2f ms; sum of ops %.1f%%)\n",
                 r.test.c_str(), seconds_per_rep * 1e3, [&] {
                     double s = 0;
                     for (const auto& [k, v] : r.profile) s += v.seconds;
                     return seconds_per_rep > 0 ? 100.0 * s / seconds_per_rep : 0.0;
                 }());
    std::fprintf(stderr, "| %-36s | %8s | %10s | %6s |\n", "op", "calls", "ms", "%");
    std::fprintf(stderr, "| %-36s | %8s | %10s | %6s |\n", "---", "---:", "---:", "---:");
    for (const auto& [k, v] : r.profile)
        std::fprintf(stderr, "| %-36s | %8lld | %10.3f | %5.1f%% |\n", k.c_str(),
                     static_cast<long long>(v.calls), v.seconds * 1e3,
                     seconds_per_rep > 0 ? 100.0 * v.seconds / seconds_per_rep : 0.0);
}

void run_bench(const BenchArgs& a) {
    const auto positive = [](int v) { return v > 0; };
    const auto negative = [](int v) { return v < 0; };
    check(std::none_of(a.n_prompt.begin(), a.n_prompt.end(), negative) &&
              std::none_of(a.n_gen.begin(), a.n_gen.end(), negative) &&
              (std::any_of(a.n_prompt.begin(), a.n_prompt.end(), positive) ||
               std::any_of(a.n_gen.begin(), a.n_gen.end(), positive)),
          "-p and -n must not be negative, and one of them positive");
    const int max_prompt = *std::max_element(a.n_prompt.begin(), a.n_prompt.end());
    const int max_gen = *std::max_element(a.n_gen.begin(), a.n_gen.end());
    check(!a.n_depth.empty() && std::none_of(a.n_depth.begin(), a.n_depth.end(), negative),
          "-d must not be negative");
    const int max_depth = *std::max_element(a.n_depth.begin(), a.n_depth.end());
    // The cache holds depth + test tokens; positions are int32.
    check(int64_t(max_depth) + std::max(max_prompt, max_gen) <= (int64_t(1) << 30),
          "-d plus the longest test must be at most 2^30 tokens");
    check(a.reps >= 1, "-r must be at least 1");
    check(!a.threads.empty() && std::none_of(a.threads.begin(), a.threads.end(), negative),
          "-t must not be negative");
    check(a.bandwidth_mib >= 1 && a.bandwidth_mib <= 65536,
          "--bandwidth-mib must be in [1, 65536]");
    const bool profile = a.profile || [] {
        const char* e = std::getenv("LCX_PROFILE");
        return e && *e && std::string(e) != "0";
    }();

    const CpuBackendOptions bo = a.cpu.backend_options();
    std::unique_ptr<Backend> cpu = make_cpu_backend(a.threads[0], bo);
    const int threads = cpu->n_threads();
    // Before the model is loaded, so that its 1 GiB buffer is gone again by the time the
    // resident set is read.
    const double bw = a.bandwidth_gbs > 0
                          ? a.bandwidth_gbs
                          : measure_read_bandwidth_gbs(threads, size_t(a.bandwidth_mib) << 20);
    // The peak resident set (VmHWM) restarts after every measurement, so that it is the
    // model's and not the measurement buffer's ("5": reset the peak, Linux 4.0 and later).
    const auto reset_peak = [] { std::ofstream("/proc/self/clear_refs") << "5"; };
    reset_peak();
    uint64_t peak_between = 0;  // the largest peak before a later measurement reset it

    const auto t_load = Clock::now();
    std::shared_ptr<const Model> model;
    std::string file;
    if (a.model_path.empty()) {
        const std::span<const uint8_t> bytes(
            lcx_bundled_model_begin, size_t(lcx_bundled_model_end - lcx_bundled_model_begin));
        model = Model::from_gguf(
            gguf::GgufFile::from_memory(bytes, /*copy=*/false, "bundled stories260K"), cpu.get());
        file = "stories260K (bundled)";
    } else {
        model = Model::load(a.model_path, cpu.get());
        file = std::filesystem::path(a.model_path).filename().string();
    }
    ContextParams cp;
    cp.n_ctx = std::max<int64_t>(int64_t(max_depth) + std::max(max_prompt, max_gen), 1);
    cp.n_batch = std::max(max_prompt, 1);
    double load_s = 0;
    uint64_t rss_load = 0, kv_bytes = 0;
    const ModelFacts facts = describe(*model, file);
    const double bound_tps =
        double(bw) * 1e9 / double(std::max<uint64_t>(facts.bytes_per_token, 1));
    // A generation test's bound: its weights and KV cache bytes per token at this bandwidth.
    const auto bound_of = [](const TestResult& r) {
        return r.bandwidth_gbs * 1e9 / double(std::max<uint64_t>(r.bytes_per_token, 1));
    };
    // As llama-bench: per depth, every -p value a prompt test, then every -n value a
    // generation test; all of them once per -t value.
    struct Test {
        bool prompt;
        int n, depth;
    };
    std::vector<Test> tests;
    for (int d : a.n_depth) {
        for (int n : a.n_prompt)
            if (n > 0) tests.push_back({true, n, d});
        for (int n : a.n_gen)
            if (n > 0) tests.push_back({false, n, d});
    }
    std::vector<TestResult> results;
    for (size_t ti = 0; ti < a.threads.size(); ++ti) {
        // The model was packed for the first backend; the others take the same path, so
        // the same layouts.
        if (ti > 0) cpu = make_cpu_backend(a.threads[ti], bo);
        const int n_threads = cpu->n_threads();
        ProfilingBackend* prof = nullptr;
        std::unique_ptr<Backend> backend;
        if (profile) {
            auto pb = std::make_unique<ProfilingBackend>(std::move(cpu));
            prof = pb.get();
            backend = std::move(pb);
        } else {
            backend = std::move(cpu);
        }
        Context ctx(model, *backend, cp);
        if (ti == 0) {
            load_s = seconds_since(t_load);
            rss_load = resident_bytes();
            kv_bytes = ctx.kv_cache().n_bytes();
        }
        // One cached token's K and V over all layers: what attention reads per cell.
        const double kv_bytes_per_cell = double(kv_bytes) / double(std::max<int64_t>(cp.n_ctx, 1));
        std::mt19937 rng(42);
        std::uniform_int_distribution<int32_t> dist(0, int32_t(model->hparams().n_vocab - 1));
        int filled = -1;  // the depth the cache holds
        for (const auto& [prompt, n, depth] : tests) {
            if (depth != filled) {
                std::vector<int32_t> prefix(static_cast<size_t>(depth));
                for (auto& t : prefix) t = dist(rng);
                fill_depth(ctx, prefix);
                filled = depth;
            }
            std::vector<int32_t> tokens(static_cast<size_t>(n));
            for (auto& t : tokens) t = dist(rng);
            TestResult r;
            r.test = (prompt ? "pp" : "tg") + std::to_string(n);
            if (depth > 0) r.test += " @ d" + std::to_string(depth);
            r.n_prompt = prompt ? n : 0;
            r.n_gen = prompt ? 0 : n;
            r.n_depth = depth;
            r.threads = n_threads;
            r.backend = backend->name();
            // Step i of a generation test attends to depth + i + 1 cells.
            r.bytes_per_token =
                facts.bytes_per_token +
                (prompt ? 0 : uint64_t(kv_bytes_per_cell * (double(depth) + double(n + 1) / 2)));
            // Warm-up: page in the weights, settle the caches.
            run_once(ctx, tokens, prompt, depth);
            // A generation test's bound comes from the bandwidth measured right before it,
            // on its threads: the host's memory is shared, and what it gives drifts by a
            // third within a minute.
            r.bandwidth_gbs = bw;
            if (!prompt && a.bandwidth_gbs <= 0) {
                peak_between = std::max(peak_between, status_bytes("VmHWM:"));
                r.bandwidth_gbs =
                    measure_read_bandwidth_gbs(n_threads, size_t(a.bandwidth_mib) << 20);
                reset_peak();
            }
            if (prof) prof->reset();
            double total = 0;
            for (int i = 0; i < a.reps; ++i) {
                const double s = run_once(ctx, tokens, prompt, depth);
                total += s;
                r.tokens_per_s.push_back(double(n) / s);
            }
            mean_sd(r);
            if (prof) {
                for (const auto& [k, v] : prof->stats())
                    r.profile.push_back({k, {v.seconds / a.reps, v.calls / a.reps}});
                std::sort(r.profile.begin(), r.profile.end(), [](const auto& x, const auto& y) {
                    return x.second.seconds > y.second.seconds;
                });
                print_profile(r, total / a.reps);
            }
            results.push_back(std::move(r));
        }
    }
    const uint64_t rss_run = resident_bytes();
    const uint64_t rss_peak = std::max(peak_between, status_bytes("VmHWM:"));

    if (a.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : results) {
            nlohmann::json o;
            o["model"] = facts.file;
            o["model_desc"] = facts.desc;
            o["type"] = facts.type;
            o["size_bytes"] = facts.size_bytes;
            o["n_params"] = facts.n_params;
            o["backend"] = r.backend;
            o["threads"] = r.threads;
            o["test"] = r.test;
            o["n_prompt"] = r.n_prompt;
            o["n_gen"] = r.n_gen;
            o["n_depth"] = r.n_depth;
            o["repetitions"] = a.reps;
            o["tokens_per_s"] = r.mean;
            o["stddev"] = r.sd;
            o["samples_tokens_per_s"] = r.tokens_per_s;
            o["bandwidth_gbs"] = r.bandwidth_gbs;
            o["bytes_per_token"] = r.n_gen > 0 ? r.bytes_per_token : facts.bytes_per_token;
            if (r.n_gen > 0) {
                const double bound = bound_of(r);
                o["bound_tokens_per_s"] = bound;
                o["bound_fraction"] = r.mean / bound;
            }
            o["load_s"] = load_s;
            o["rss_after_load_bytes"] = rss_load;
            o["rss_after_run_bytes"] = rss_run;
            o["rss_peak_bytes"] = rss_peak;
            o["kv_cache_bytes"] = kv_bytes;
            if (!r.profile.empty()) {
                nlohmann::json p = nlohmann::json::object();
                for (const auto& [k, v] : r.profile)
                    p[k] = {{"ms_per_rep", v.seconds * 1e3}, {"calls_per_rep", v.calls}};
                o["profile"] = p;
            }
            arr.push_back(o);
        }
        std::printf("%s\n", arr.dump(2).c_str());
        return;
    }

    int bw_col = 22;  // the backend column: as wide as its longest name
    for (const auto& r : results) bw_col = std::max(bw_col, int(r.backend.size()));
    std::printf("| %-24s | %10s | %9s | %-*s | %7s | %13s | %18s | %12s |\n", "model", "size",
                "params", bw_col, "backend", "threads", "test", "t/s", "of bw bound");
    std::printf("| %-24s | %10s | %9s | %-*s | %7s | %13s | %18s | %12s |\n", "---",
                "---:", "---:", bw_col, "---", "---:", "---:", "---:", "---:");
    for (const auto& r : results) {
        char tps[48], frac[32] = "";
        std::snprintf(tps, sizeof tps, "%.2f ± %.2f", r.mean, r.sd);
        if (r.n_gen > 0) std::snprintf(frac, sizeof frac, "%.0f%%", 100.0 * r.mean / bound_of(r));
        std::printf("| %-24s | %10s | %9s | %-*s | %7d | %13s | %18s | %12s |\n",
                    facts.desc.c_str(), size_label(facts.size_bytes).c_str(),
                    params_label(facts.n_params).c_str(), bw_col, r.backend.c_str(), r.threads,
                    r.test.c_str(), tps, frac);
    }
    std::string before_tests;
    if (a.bandwidth_gbs <= 0)
        for (const auto& r : results)
            if (r.n_gen > 0) {
                char b[96];
                std::snprintf(b, sizeof b, "%s %.1f GB/s", r.test.c_str(), r.bandwidth_gbs);
                if (a.threads.size() > 1)
                    std::snprintf(b, sizeof b, "%s on %d threads %.1f GB/s", r.test.c_str(),
                                  r.threads, r.bandwidth_gbs);
                before_tests += (before_tests.empty() ? "; before " : ", ") + std::string(b);
            }
    std::printf(
        "\nread bandwidth %.1f GB/s (%d threads)%s; decode reads %.1f MiB of weights per token: "
        "bound %.1f t/s at %.1f GB/s\n",
        bw, threads, before_tests.c_str(), double(facts.bytes_per_token) / (1 << 20), bound_tps,
        bw);
    std::printf(
        "load %.3f s; RSS after load %.1f MiB, after the run %.1f MiB, peak %.1f MiB (weights "
        "%.1f MiB + KV cache %.1f MiB = %.1f MiB)\n",
        load_s, double(rss_load) / (1 << 20), double(rss_run) / (1 << 20),
        double(rss_peak) / (1 << 20), double(facts.size_bytes) / (1 << 20),
        double(kv_bytes) / (1 << 20), double(facts.size_bytes + kv_bytes) / (1 << 20));
}

}  // namespace

void add_bench_command(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    auto* cmd = app.add_subcommand(
        "bench", "Prompt and generation speed, as llama-bench (without -m: the bundled model)");
    cmd->add_option("-m,--model", args->model_path, "GGUF model file")->check(CLI::ExistingFile);
    cmd->add_option("-p,--n-prompt", args->n_prompt,
                    "prompt tokens, a comma-separated list for several tests; 0 = skip "
                    "(default: 512)")
        ->delimiter(',');
    cmd->add_option("-n,--n-gen", args->n_gen,
                    "generated tokens, a comma-separated list for several tests; 0 = skip "
                    "(default: 128)")
        ->delimiter(',');
    cmd->add_option("-d,--n-depth", args->n_depth,
                    "tokens already in the KV cache when each test starts (filled untimed), a "
                    "comma-separated list to run every test at several depths (default: 0)")
        ->delimiter(',');
    cmd->add_option("-t,--threads", args->threads,
                    "threads, a comma-separated list to run every test with each (default: all "
                    "cores)")
        ->delimiter(',');
    cmd->add_option("-r,--repetitions", args->reps, "repetitions of each test (default: 5)");
    add_cpu_options(cmd, args->cpu);
    cmd->add_flag("--json", args->json, "print a JSON array, one object per test");
    cmd->add_flag("--profile", args->profile,
                  "time every backend operation (also LCX_PROFILE=1); the breakdown goes to "
                  "stderr");
    cmd->add_option("--bandwidth", args->bandwidth_gbs,
                    "read bandwidth in GB/s to use instead of measuring it");
    cmd->add_option("--bandwidth-mib", args->bandwidth_mib,
                    "buffer size of the bandwidth measurement in MiB (default: 1024)");
    cmd->callback([args] { run_bench(*args); });
}

}  // namespace lcx::cli
