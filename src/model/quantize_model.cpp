// llama-quantize's per-tensor type choice ("mixes") and the conversion loop. The rules
// follow llama.cpp's llama_tensor_get_type for the mixes listed in the header: which
// tensors may be quantized, which roles get more bits in which layers, and the fallback
// types for row lengths a block format cannot hold.
#include "model/quantize_model.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "quant/quant.h"

namespace lcx {
namespace {

// llama.cpp's llama_ftype ids, written to general.file_type.
enum class Ftype : uint32_t {
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    Q2_K_S = 21,
    IQ4_NL = 25,
    IQ4_XS = 30,
    BF16 = 32,
};

struct Mix {
    const char* name;
    Ftype ftype;
    DType base;  // the type most tensors get
};

constexpr Mix kMixes[] = {
    {"F16", Ftype::F16, DType::F16},          {"BF16", Ftype::BF16, DType::BF16},
    {"Q4_0", Ftype::Q4_0, DType::Q4_0},       {"Q4_1", Ftype::Q4_1, DType::Q4_1},
    {"Q5_0", Ftype::Q5_0, DType::Q5_0},       {"Q5_1", Ftype::Q5_1, DType::Q5_1},
    {"Q8_0", Ftype::Q8_0, DType::Q8_0},       {"Q2_K", Ftype::Q2_K, DType::Q2_K},
    {"Q2_K_S", Ftype::Q2_K_S, DType::Q2_K},   {"Q3_K_S", Ftype::Q3_K_S, DType::Q3_K},
    {"Q3_K_M", Ftype::Q3_K_M, DType::Q3_K},   {"Q3_K_L", Ftype::Q3_K_L, DType::Q3_K},
    {"Q4_K_S", Ftype::Q4_K_S, DType::Q4_K},   {"Q4_K_M", Ftype::Q4_K_M, DType::Q4_K},
    {"Q5_K_S", Ftype::Q5_K_S, DType::Q5_K},   {"Q5_K_M", Ftype::Q5_K_M, DType::Q5_K},
    {"Q6_K", Ftype::Q6_K, DType::Q6_K},       {"IQ4_NL", Ftype::IQ4_NL, DType::IQ4_NL},
    {"IQ4_XS", Ftype::IQ4_XS, DType::IQ4_XS}, {"Q3_K", Ftype::Q3_K_M, DType::Q3_K},
    {"Q4_K", Ftype::Q4_K_M, DType::Q4_K},     {"Q5_K", Ftype::Q5_K_M, DType::Q5_K},
};

const Mix& find_mix(std::string_view name) {
    std::string upper(name);
    for (auto& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    for (const auto& m : kMixes)
        if (upper == m.name) return m;
    std::string known;
    for (const auto& m : kMixes) known += std::string(known.empty() ? "" : ", ") + m.name;
    throw Error("quantize: unknown type '" + std::string(name) + "' (known: " + known + ")");
}

bool contains(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }

// Layer index of "blk.N.*" names, -1 for the others.
int layer_of(const std::string& name) {
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}

// llama.cpp's tensor order: non-layer tensors first, then layer by layer; by name within.
bool llama_order(const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
    const int la = layer_of(a->name), lb = layer_of(b->name);
    if (la != lb) return la < lb;
    return a->name < b->name;
}

int n_dims(const std::vector<int64_t>& shape) {
    size_t n = shape.size();
    while (n > 1 && shape[n - 1] == 1) --n;
    return int(n);
}

// Which tensors llama-quantize converts at all: 2-D+ weights, except norms and a list of
// small or special-purpose tensors it always keeps as they are.
bool allows_quantization(const gguf::TensorInfo& t) {
    if (n_dims(t.shape) < 2) return false;
    const std::string& name = t.name;
    if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
    static const char* const kKeep[] = {
        "_norm.weight",
        "ffn_gate_inp.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd.",
    };
    for (const char* k : kKeep)
        if (contains(name, k)) return false;
    return name != "position_embd.weight" && name != "token_types.weight";
}

struct ModelFacts {
    std::string arch;
    int n_layer = 0;
    int n_gqa = 1;  // query heads per KV head
    int n_expert = 0;
    bool has_output = false;  // false: token_embd doubles as the output projection
    bool is_70b = false;
    int n_attention_wv = 0;
};

struct MixState {
    int i_attention_wv = 0;
    int i_ffn_down = 0;
    int i_ffn_gate = 0;
    int i_ffn_up = 0;
    int n_fallback = 0;
};

ModelFacts model_facts(const gguf::GgufFile& f) {
    ModelFacts m;
    m.arch = f.get_string("general.architecture").value_or("");
    const auto key = [&](const char* suffix) { return m.arch + "." + suffix; };
    m.n_layer = int(f.get_int(key("block_count")).value_or(0));
    const int64_t n_head = f.get_int(key("attention.head_count")).value_or(0);
    const int64_t n_head_kv = f.get_int(key("attention.head_count_kv")).value_or(n_head);
    m.n_gqa = n_head_kv > 0 ? int(n_head / n_head_kv) : 1;
    m.n_expert = int(f.get_int(key("expert_count")).value_or(0));
    // llama.cpp keys one rule on its "70B" model class; for LLaMA that is 80 layers.
    m.is_70b = m.arch == "llama" && m.n_layer == 80;
    for (const auto& t : f.tensors()) {
        if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") ||
            contains(t.name, "attn_kv_b.weight"))
            ++m.n_attention_wv;
        if (t.name == "output.weight") m.has_output = true;
    }
    return m;
}

// More bits for the first and last eighth of the layers and every third one between.
bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

bool is_token_embd(const std::string& name) {
    return name == "token_embd.weight" || name == "per_layer_token_embd.weight";
}

// llama_tensor_get_type for the mixes we offer (the IQ1-IQ3 branches are left out).
DType mix_type(const ModelFacts& m, MixState& st, const gguf::TensorInfo& t, Ftype ft, DType type) {
    const std::string& name = t.name;
    const bool falcon = m.arch == "falcon";
    auto layer_info = [&](int i_layer) {
        // Expert tensors are not in layer order; take the layer from the name.
        if (m.n_expert > 1) {
            i_layer = layer_of(name);
            check(i_layer >= 0 && i_layer < m.n_layer,
                  "quantize: cannot tell the layer of tensor " + name);
        }
        return i_layer;
    };

    if (name == "output.weight" || (!m.has_output && is_token_embd(name))) {
        const int64_t nx = t.shape[0];
        if (falcon || nx % traits(type).block_size != 0)
            type = DType::Q8_0;
        else if (type != DType::Q8_0)
            type = DType::Q6_K;
    } else if (is_token_embd(name)) {
        // No change for these mixes.
    } else if (contains(name, "attn_v.weight")) {
        if (ft == Ftype::Q2_K)
            type = m.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
        else if (ft == Ftype::Q2_K_S && m.n_gqa >= 4)
            type = DType::Q4_K;
        else if (ft == Ftype::Q3_K_M)
            type = st.i_attention_wv < 2 ? DType::Q5_K : DType::Q4_K;
        else if (ft == Ftype::Q3_K_L)
            type = DType::Q5_K;
        else if ((ft == Ftype::IQ4_NL || ft == Ftype::IQ4_XS) && m.n_gqa >= 4)
            type = DType::Q5_K;
        else if ((ft == Ftype::Q4_K_M || ft == Ftype::Q5_K_M) &&
                 use_more_bits(st.i_attention_wv, m.n_attention_wv))
            type = DType::Q6_K;
        else if (ft == Ftype::Q4_K_S && st.i_attention_wv < 4)
            type = DType::Q5_K;
        // With 8 query heads per KV head attn_v is 8x smaller than attn_q: extra bits
        // there are nearly free.
        if (m.is_70b && (type == DType::Q3_K || type == DType::Q4_K)) type = DType::Q5_K;
        if (m.n_expert == 8) type = DType::Q8_0;
        ++st.i_attention_wv;
    } else if (contains(name, "attn_k.weight")) {
        if (m.n_expert == 8) type = DType::Q8_0;
    } else if (contains(name, "attn_q.weight")) {
        // No change for these mixes.
    } else if (contains(name, "ffn_down")) {
        const int i_layer = layer_info(st.i_ffn_down), n_layer = m.n_layer;
        if (ft == Ftype::Q2_K) {
            type = DType::Q3_K;
        } else if (ft == Ftype::Q2_K_S) {
            if (i_layer < n_layer / 8) type = DType::Q4_K;
        } else if (ft == Ftype::Q3_K_M) {
            type = i_layer < n_layer / 16                       ? DType::Q5_K
                   : !falcon || use_more_bits(i_layer, n_layer) ? DType::Q4_K
                                                                : DType::Q3_K;
        } else if (ft == Ftype::Q3_K_L) {
            type = falcon ? DType::Q4_K : DType::Q5_K;
        } else if (ft == Ftype::Q4_K_M) {
            if (falcon)
                type = i_layer < n_layer / 16            ? DType::Q6_K
                       : use_more_bits(i_layer, n_layer) ? DType::Q5_K
                                                         : DType::Q4_K;
            else if (use_more_bits(i_layer, n_layer))
                type = DType::Q6_K;
        } else if (i_layer < n_layer / 8 && (ft == Ftype::IQ4_NL || ft == Ftype::IQ4_XS)) {
            type = DType::Q5_K;  // llama.cpp does this only without an importance matrix
        } else if (ft == Ftype::Q5_K_M && use_more_bits(i_layer, n_layer)) {
            type = DType::Q6_K;
        } else if (ft == Ftype::Q4_K_S && !falcon && i_layer < n_layer / 8) {
            type = DType::Q5_K;
        }
        ++st.i_ffn_down;
    } else if (contains(name, "attn_output.weight")) {
        if (!falcon) {
            if (m.n_expert == 8) {
                if (ft == Ftype::Q2_K || ft == Ftype::Q3_K_S || ft == Ftype::Q3_K_M ||
                    ft == Ftype::IQ4_NL || ft == Ftype::Q4_K_S || ft == Ftype::Q4_K_M ||
                    ft == Ftype::IQ4_XS)
                    type = DType::Q5_K;
            } else {
                if (ft == Ftype::Q2_K)
                    type = DType::Q3_K;
                else if (ft == Ftype::Q3_K_M)
                    type = DType::Q4_K;
                else if (ft == Ftype::Q3_K_L)
                    type = DType::Q5_K;
            }
        } else if (ft == Ftype::Q3_K_L) {
            type = DType::Q4_K;
        }
    } else if (contains(name, "attn_qkv.weight")) {
        if (ft == Ftype::Q3_K_M || ft == Ftype::Q3_K_L)
            type = DType::Q4_K;
        else if (ft == Ftype::Q4_K_M)
            type = DType::Q5_K;
        else if (ft == Ftype::Q5_K_M)
            type = DType::Q6_K;
    } else if (contains(name, "ffn_gate")) {
        layer_info(st.i_ffn_gate);  // validates expert tensor names
        ++st.i_ffn_gate;
    } else if (contains(name, "ffn_up")) {
        layer_info(st.i_ffn_up);
        ++st.i_ffn_up;
    }
    return type;
}

// A row length the chosen block format cannot hold: the nearest type with 32-element
// blocks, else F16.
DType with_fallback(DType type, int64_t ncols, MixState& st, const std::string& name) {
    if (ncols % traits(type).block_size == 0) return type;
    DType fb;
    switch (type) {
        case DType::Q2_K:
        case DType::Q3_K:
        case DType::IQ4_XS:
            fb = DType::IQ4_NL;
            break;
        case DType::Q4_K:
            fb = DType::Q5_0;
            break;
        case DType::Q5_K:
            fb = DType::Q5_1;
            break;
        case DType::Q6_K:
            fb = DType::Q8_0;
            break;
        default:
            fb = DType::F16;
            break;
    }
    if (ncols % traits(fb).block_size != 0) fb = DType::F16;
    log::debug("quantize: %s has rows of %lld, not a multiple of %lld for %s: using %s",
               name.c_str(), (long long)ncols, (long long)traits(type).block_size,
               std::string(dtype_name(type)).c_str(), std::string(dtype_name(fb)).c_str());
    ++st.n_fallback;
    return fb;
}

struct Planned {
    const gguf::TensorInfo* info;
    DType type;
};

std::vector<Planned> plan(const gguf::GgufFile& f, const Mix& mix, bool pure, MixState& st) {
    const ModelFacts facts = model_facts(f);
    std::vector<const gguf::TensorInfo*> order;
    for (const auto& t : f.tensors()) order.push_back(&t);
    std::stable_sort(order.begin(), order.end(), llama_order);
    std::vector<Planned> out;
    const bool base_quantized = traits(mix.base).quantized;
    for (const auto* t : order) {
        DType type = t->type;
        if (allows_quantization(*t)) {
            type = mix.base;
            if (base_quantized) {
                if (!pure) type = mix_type(facts, st, *t, mix.ftype, type);
                type = with_fallback(type, t->shape[0], st, t->name);
            }
        }
        out.push_back({t, type});
    }
    return out;
}

// Tensor t of f converted to `type`, rows split between threads. Each thread converts its
// rows a chunk at a time through a small float buffer: the whole tensor as floats would
// take 4 bytes a weight (4.2 GB for a 70B model's token embedding).
std::vector<uint8_t> convert_tensor(const gguf::GgufFile& f, const gguf::TensorInfo& t, DType type,
                                    int n_threads) {
    check(can_dequantize(t.type), "quantize: tensor " + t.name + " has type " +
                                      std::string(dtype_name(t.type)) +
                                      ", which cannot be converted");
    const int64_t row_len = t.shape[0], n_rows = t.n_elements() / row_len;
    const size_t in_row = row_bytes(t.type, row_len), out_row = row_bytes(type, row_len);
    const uint8_t* src = f.tensor_bytes(t).data();
    std::vector<uint8_t> out(out_row * size_t(n_rows));
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 18) / row_len);  // ~1 MiB of floats
    const int nt = int(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_rows)));
    std::vector<std::exception_ptr> errors(static_cast<size_t>(nt));
    auto work = [&](int it) {
        const int64_t r0 = n_rows * it / nt, r1 = n_rows * (it + 1) / nt;
        try {
            std::vector<float> buf(size_t(std::min(chunk, r1 - r0) * row_len));
            for (int64_t r = r0; r < r1; r += chunk) {
                const int64_t n = std::min(chunk, r1 - r);
                dequantize_row(t.type, src + size_t(r) * in_row, buf.data(), n * row_len);
                quantize_rows(type, buf.data(), out.data() + size_t(r) * out_row, n, row_len);
            }
        } catch (...) {
            errors[size_t(it)] = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    for (int it = 1; it < nt; ++it) threads.emplace_back(work, it);
    work(0);
    for (auto& th : threads) th.join();
    for (auto& e : errors) {
        if (!e) continue;
        try {
            std::rethrow_exception(e);
        } catch (const Error& err) {
            throw Error("quantize: tensor " + t.name + ": " + err.what());
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> quantize_mix_names() {
    std::vector<std::string> names;
    for (const auto& m : kMixes) names.emplace_back(m.name);
    return names;
}

std::vector<std::pair<std::string, DType>> plan_quantization(const std::filesystem::path& in_path,
                                                             std::string_view mix, bool pure) {
    const Mix& m = find_mix(mix);
    const auto f = gguf::GgufFile::open(in_path);
    MixState st;
    std::vector<std::pair<std::string, DType>> out;
    for (const auto& p : plan(f, m, pure, st)) out.emplace_back(p.info->name, p.type);
    return out;
}

QuantizeModelResult quantize_model(const std::filesystem::path& in_path,
                                   const std::filesystem::path& out_path, std::string_view mix,
                                   bool pure, int n_threads) {
    const Mix& m = find_mix(mix);
    const auto f = gguf::GgufFile::open(in_path);
    MixState st;
    const auto planned = plan(f, m, pure, st);

    gguf::GgufWriter w;
    for (const auto& kv : f.metadata()) {
        if (kv.key.rfind("split.", 0) == 0) continue;  // the output is one file
        // Set below; llama.cpp's setters move an existing key to the end, so do we.
        if (kv.key == "general.quantization_version" || kv.key == "general.file_type") continue;
        w.add(kv.key, kv.value);
    }
    w.add("general.quantization_version", gguf::Value{uint32_t(2)});
    w.add("general.file_type", gguf::Value{uint32_t(m.ftype)});

    QuantizeModelResult r;
    for (const auto& p : planned) {
        const auto& t = *p.info;
        const auto in_bytes = f.tensor_bytes(t);
        r.bytes_in += in_bytes.size();
        ++r.n_tensors;
        if (p.type == t.type) {
            w.add_tensor_view(t.name, t.type, t.shape, in_bytes);
            r.bytes_out += in_bytes.size();
            continue;
        }
        ++r.n_converted;
        const int64_t row_len = t.shape[0];
        const int64_t n_rows = t.n_elements() / row_len;
        r.bytes_out += row_bytes(p.type, row_len) * size_t(n_rows);
        // Converted as the writer reaches it, so one converted tensor is held at a time,
        // not the whole output (4 GB for a 7B model's Q4_K_M); the input's pages are
        // released once read.
        w.add_tensor_lazy(t.name, p.type, t.shape, [&f, &t, type = p.type, n_threads, in_bytes] {
            auto out = convert_tensor(f, t, type, std::max(1, n_threads));
            f.release_pages(in_bytes.data(), in_bytes.size());
            return out;
        });
    }
    r.n_fallback = st.n_fallback;
    w.write(out_path);
    return r;
}

}  // namespace lcx
