// `llama-cxx info MODEL.gguf [--json]`: what is in a GGUF file. Metadata, the tensor
// table, totals, and the hyper-parameters of the model's architecture, as text or as one
// JSON document. Long arrays (vocabularies) and long strings (chat templates) are
// summarised so the output stays readable.
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "gguf/gguf_file.h"

namespace lcx::cli {

namespace {

using gguf::Array;
using gguf::GgufFile;
using gguf::Value;
using gguf::ValueType;
using nlohmann::ordered_json;

constexpr size_t kMaxStringChars = 80;  // longer strings are cut (UTF-8 safe)
constexpr size_t kMaxArrayItems = 8;    // longer arrays show their first items

struct InfoOptions {
    std::string model;
    bool json = false;
};

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string cut_utf8(const std::string& s, size_t max) {
    if (s.size() <= max) return s;
    size_t n = max;
    while (n > 0 && (uint8_t(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (uint8_t(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof(buf), "\\x%02x", unsigned(uint8_t(c)));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

// Shortest text that reads back as the same float.
template <class F>
std::string float_text(F x) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    return std::string(buf, r.ptr);
}

std::string scalar_text(const Value& v) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                std::string s = quote(cut_utf8(x, kMaxStringChars));
                if (x.size() > kMaxStringChars) s += "... (" + std::to_string(x.size()) + " bytes)";
                return s;
            } else if constexpr (std::is_same_v<T, Array>) {
                return "";
            } else if constexpr (std::is_same_v<T, bool>) {
                return x ? "true" : "false";
            } else if constexpr (std::is_floating_point_v<T>) {
                return float_text(x);
            } else {
                return std::to_string(x);
            }
        },
        v.v);
}

std::string value_text(const Value& v) {
    const Array* a = v.as_array();
    if (!a) return scalar_text(v);
    std::string s = "[";
    const size_t n = std::min(a->items.size(), kMaxArrayItems);
    for (size_t i = 0; i < n; ++i) {
        if (i) s += ", ";
        s += value_text(a->items[i]);
    }
    if (a->items.size() > n) s += ", ...";
    s += "]";
    return s;
}

std::string type_text(const Value& v) {
    const Array* a = v.as_array();
    if (!a) return std::string(gguf::value_type_name(v.type()));
    std::string inner = a->items.empty() || a->elem_type != ValueType::ARRAY
                            ? std::string(gguf::value_type_name(a->elem_type))
                            : "arr";
    return "arr[" + inner + "," + std::to_string(a->items.size()) + "]";
}

ordered_json value_json(const Value& v) {
    return std::visit(
        [](const auto& x) -> ordered_json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                return cut_utf8(x, kMaxStringChars);
            } else if constexpr (std::is_same_v<T, Array>) {
                ordered_json items = ordered_json::array();
                const size_t n = std::min(x.items.size(), kMaxArrayItems);
                for (size_t i = 0; i < n; ++i) items.push_back(value_json(x.items[i]));
                return items;
            } else if constexpr (std::is_same_v<T, float>) {
                // The shortest decimal that reads back as this f32 (1e-05, not
                // 9.999999747378752e-06), carried as a double.
                return std::strtod(float_text(x).c_str(), nullptr);
            } else {
                return x;
            }
        },
        v.v);
}

ordered_json entry_json(const gguf::KeyValue& kv) {
    ordered_json e;
    e["key"] = kv.key;
    e["type"] = gguf::value_type_name(kv.value.type());
    if (const Array* a = kv.value.as_array()) {
        e["elem_type"] = gguf::value_type_name(a->elem_type);
        e["length"] = a->items.size();
        e["truncated"] = a->items.size() > kMaxArrayItems;
    } else if (const std::string* s = kv.value.as_string()) {
        e["length"] = s->size();
        e["truncated"] = s->size() > kMaxStringChars;
    }
    e["value"] = value_json(kv.value);
    return e;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

struct Totals {
    int64_t params = 0;
    uint64_t bytes = 0;
    std::map<std::string, int> by_type;
};

Totals totals_of(const GgufFile& f) {
    Totals t;
    for (const auto& ti : f.tensors()) {
        t.params += ti.n_elements();
        t.bytes += ti.n_bytes;
        t.by_type[std::string(dtype_name(ti.type))]++;
    }
    return t;
}

// One hyper-parameter: the value of an `<arch>.*` key, or a default/derived value.
struct HParam {
    std::string name;
    std::string key;  // metadata key it comes from ("" when derived)
    ordered_json value;
    std::string note;  // "derived", "default", or ""
};

std::vector<HParam> hparams_of(const GgufFile& f) {
    std::vector<HParam> out;
    const Value* arch_v = f.find("general.architecture");
    if (!arch_v || !arch_v->as_string()) return out;
    const std::string arch = *arch_v->as_string();
    auto from_key = [&](const std::string& name, const std::string& suffix) -> const Value* {
        const std::string key = arch + "." + suffix;
        const Value* v = f.find(key);
        if (v) out.push_back({name, key, value_json(*v), ""});
        return v;
    };
    const Value* n_embd = from_key("n_embd", "embedding_length");
    from_key("n_layer", "block_count");
    const Value* n_head = from_key("n_head", "attention.head_count");
    if (!from_key("n_head_kv", "attention.head_count_kv") && n_head)
        out.push_back({"n_head_kv", "", value_json(*n_head), "default: n_head"});
    if (!from_key("head_dim", "attention.key_length") && n_embd && n_head) {
        const auto e = n_embd->as_int(), h = n_head->as_int();
        if (e && h && *h > 0) out.push_back({"head_dim", "", *e / *h, "derived: n_embd / n_head"});
    }
    from_key("n_ff", "feed_forward_length");
    from_key("n_ctx_train", "context_length");
    if (!from_key("rope_freq_base", "rope.freq_base"))
        out.push_back({"rope_freq_base", "", 10000.0, "default"});
    from_key("rope_dim", "rope.dimension_count");
    if (!from_key("norm_eps", "attention.layer_norm_rms_epsilon"))
        from_key("norm_eps", "attention.layer_norm_epsilon");
    if (!from_key("n_vocab", "vocab_size")) {
        const Value* tokens = f.find("tokenizer.ggml.tokens");
        if (tokens && tokens->as_array())
            out.push_back({"n_vocab", "tokenizer.ggml.tokens", tokens->as_array()->items.size(),
                           "length of"});
    }
    from_key("sliding_window", "attention.sliding_window");
    from_key("attn_logit_softcap", "attn_logit_softcapping");
    from_key("final_logit_softcap", "final_logit_softcapping");
    return out;
}

std::string json_scalar_text(const ordered_json& j) {
    if (j.is_number_float()) return float_text(j.get<double>());
    return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

void print_text(const GgufFile& f) {
    std::printf("file:         %s\n", f.path().c_str());
    std::printf("GGUF version: %u\n", f.version());
    std::printf("alignment:    %llu\n", (unsigned long long)f.alignment());
    std::printf("file size:    %llu bytes\n", (unsigned long long)f.file_size());
    std::printf("data offset:  %llu\n", (unsigned long long)f.data_offset());

    std::printf("\nmetadata: %zu keys\n", f.metadata().size());
    size_t key_w = 0, type_w = 0;
    for (const auto& kv : f.metadata()) {
        key_w = std::max(key_w, kv.key.size());
        type_w = std::max(type_w, type_text(kv.value).size());
    }
    for (const auto& kv : f.metadata())
        std::printf("  %-*s  %-*s  %s\n", int(key_w), kv.key.c_str(), int(type_w),
                    type_text(kv.value).c_str(), value_text(kv.value).c_str());

    std::printf("\ntensors: %zu\n", f.tensors().size());
    if (!f.tensors().empty()) {
        size_t name_w = 4, shape_w = 5;
        for (const auto& ti : f.tensors()) {
            name_w = std::max(name_w, ti.name.size());
            shape_w = std::max(shape_w, shape_text(ti.shape).size());
        }
        std::printf("  %-*s  %-7s  %-*s  %12s  %12s\n", int(name_w), "name", "type", int(shape_w),
                    "shape", "bytes", "offset");
        for (const auto& ti : f.tensors())
            std::printf("  %-*s  %-7s  %-*s  %12llu  %12llu\n", int(name_w), ti.name.c_str(),
                        std::string(dtype_name(ti.type)).c_str(), int(shape_w),
                        shape_text(ti.shape).c_str(), (unsigned long long)ti.n_bytes,
                        (unsigned long long)(f.data_offset() + ti.offset));
    }

    const Totals t = totals_of(f);
    std::printf("\ntotals:\n");
    std::printf("  parameters:      %lld\n", (long long)t.params);
    std::printf("  tensor bytes:    %llu\n", (unsigned long long)t.bytes);
    if (t.params > 0)
        std::printf("  bits per weight: %.4f\n", double(t.bytes) * 8.0 / double(t.params));
    std::string types;
    for (const auto& [name, n] : t.by_type)
        types += (types.empty() ? "" : ", ") + name + ": " + std::to_string(n);
    std::printf("  tensors by type: %s\n", types.empty() ? "(none)" : types.c_str());

    const auto hp = hparams_of(f);
    if (!hp.empty()) {
        std::printf("\nhyper-parameters (%s):\n", f.get_string("general.architecture")->c_str());
        for (const auto& h : hp) {
            std::string src =
                h.key.empty() ? h.note : (h.note.empty() ? h.key : h.note + " " + h.key);
            std::printf("  %-20s %-12s (%s)\n", h.name.c_str(), json_scalar_text(h.value).c_str(),
                        src.c_str());
        }
    }
}

void print_json(const GgufFile& f) {
    ordered_json j;
    j["file"] = f.path();
    j["version"] = f.version();
    j["alignment"] = f.alignment();
    j["file_size"] = f.file_size();
    j["data_offset"] = f.data_offset();
    ordered_json md = ordered_json::array();
    for (const auto& kv : f.metadata()) md.push_back(entry_json(kv));
    j["metadata"] = std::move(md);
    ordered_json tensors = ordered_json::array();
    for (const auto& ti : f.tensors()) {
        ordered_json t;
        t["name"] = ti.name;
        t["type"] = dtype_name(ti.type);
        t["shape"] = ti.shape;
        t["bytes"] = ti.n_bytes;
        t["offset"] = f.data_offset() + ti.offset;
        tensors.push_back(std::move(t));
    }
    j["tensors"] = std::move(tensors);
    const Totals t = totals_of(f);
    ordered_json tot;
    tot["parameters"] = t.params;
    tot["bytes"] = t.bytes;
    tot["bits_per_weight"] = t.params > 0 ? double(t.bytes) * 8.0 / double(t.params) : 0.0;
    tot["tensors_by_type"] = t.by_type;
    j["totals"] = std::move(tot);
    const auto hp = hparams_of(f);
    if (!hp.empty()) {
        ordered_json h;
        h["architecture"] = *f.get_string("general.architecture");
        for (const auto& p : hp) h[p.name] = p.value;
        j["hparams"] = std::move(h);
    }
    // Strings in GGUF files are not guaranteed to be valid UTF-8: replace bad bytes
    // rather than fail.
    std::string out = j.dump(2, ' ', false, ordered_json::error_handler_t::replace);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
}

void run_info(const InfoOptions& opts) {
    GgufFile f = GgufFile::open(opts.model);
    if (opts.json)
        print_json(f);
    else
        print_text(f);
    std::fflush(stdout);
}

}  // namespace

void add_info_command(CLI::App& app) {
    auto opts = std::make_shared<InfoOptions>();
    auto* cmd = app.add_subcommand("info", "Show the metadata and tensors of a GGUF file");
    cmd->add_option("model", opts->model, "GGUF file")->required();
    cmd->add_flag("--json", opts->json, "Print one JSON document instead of text");
    cmd->callback([opts] { run_info(*opts); });
}

}  // namespace lcx::cli
