#include "model/hparams.h"

#include <cmath>

#include "common/error.h"
#include "gguf/gguf_file.h"

namespace lcx {

namespace {

std::string key(const HParams& hp, const char* suffix) { return hp.arch + "." + suffix; }

int64_t require_int(const gguf::GgufFile& f, const std::string& k) {
    const gguf::Value* v = f.find(k);
    check(v != nullptr, f.path() + ": missing metadata key " + k);
    // Some models give per-layer arrays; we only support one value for all layers.
    check(!v->is_array(), f.path() + ": " + k + " is a per-layer array, which is not supported");
    auto i = f.get_int(k);
    check(i.has_value() && *i > 0,
          f.path() + ": metadata key " + k + " must be a positive integer");
    return *i;
}

int64_t optional_int(const gguf::GgufFile& f, const std::string& k, int64_t fallback) {
    if (!f.has(k)) return fallback;
    return require_int(f, k);
}

}  // namespace

HParams read_hparams(const gguf::GgufFile& f) {
    HParams hp;
    auto arch = f.get_string("general.architecture");
    check(arch.has_value(), f.path() + ": missing metadata key general.architecture");
    hp.arch = *arch;
    hp.name = f.get_string("general.name").value_or("");

    hp.n_ctx_train = require_int(f, key(hp, "context_length"));
    hp.n_embd = require_int(f, key(hp, "embedding_length"));
    hp.n_layer = require_int(f, key(hp, "block_count"));
    hp.n_ff = require_int(f, key(hp, "feed_forward_length"));
    hp.n_head = require_int(f, key(hp, "attention.head_count"));
    hp.n_head_kv = optional_int(f, key(hp, "attention.head_count_kv"), hp.n_head);
    check(hp.n_head % hp.n_head_kv == 0, f.path() + ": attention.head_count (" +
                                             std::to_string(hp.n_head) +
                                             ") is not a multiple of attention.head_count_kv (" +
                                             std::to_string(hp.n_head_kv) + ")");
    const int64_t default_head_dim = hp.n_embd / hp.n_head;
    hp.head_dim = optional_int(f, key(hp, "attention.key_length"), default_head_dim);
    hp.head_dim_v = optional_int(f, key(hp, "attention.value_length"), hp.head_dim);
    check(hp.head_dim % 2 == 0, f.path() + ": head dimension " + std::to_string(hp.head_dim) +
                                    " must be even for rotary embeddings");

    if (auto eps = f.get_float(key(hp, "attention.layer_norm_rms_epsilon")))
        hp.norm_eps = float(*eps);
    else if (auto eps2 = f.get_float(key(hp, "attention.layer_norm_epsilon")))
        hp.norm_eps = float(*eps2);

    hp.n_rot = int(optional_int(f, key(hp, "rope.dimension_count"), hp.head_dim));
    check(hp.n_rot % 2 == 0 && hp.n_rot <= hp.head_dim,
          f.path() + ": rope.dimension_count " + std::to_string(hp.n_rot) +
              " must be even and at most the head dimension");
    if (auto base = f.get_float(key(hp, "rope.freq_base"))) hp.rope_freq_base = float(*base);

    // Linear RoPE scaling: positions are divided by the factor.
    float factor = 1.0f;
    const std::string scaling = f.get_string(key(hp, "rope.scaling.type")).value_or("");
    if (auto fac = f.get_float(key(hp, "rope.scaling.factor"))) {
        check(scaling.empty() || scaling == "linear" || scaling == "none",
              f.path() + ": rope.scaling.type '" + scaling + "' is not supported (only linear)");
        if (scaling != "none") factor = float(*fac);
    } else if (auto fac2 = f.get_float(key(hp, "rope.scale_linear"))) {
        factor = float(*fac2);
    }
    if (factor > 0.0f && factor != 1.0f) hp.rope_freq_scale = 1.0f / factor;

    if (auto cap = f.get_float(key(hp, "attn_logit_softcapping"))) hp.attn_softcap = float(*cap);
    if (auto cap = f.get_float(key(hp, "final_logit_softcapping"))) hp.final_softcap = float(*cap);
    if (auto win = f.get_int(key(hp, "attention.sliding_window")))
        hp.sliding_window = int32_t(*win);
    return hp;
}

}  // namespace lcx
