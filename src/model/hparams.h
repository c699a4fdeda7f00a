// Hyper-parameters of a model, read from GGUF metadata (`<arch>.*` keys). One struct for
// every architecture: fields an architecture does not use keep their neutral defaults.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"

namespace lcx {

namespace gguf {
class GgufFile;
}

struct HParams {
    std::string arch;  // general.architecture
    std::string name;  // general.name (may be empty)

    int64_t n_vocab = 0;      // rows of the token embedding
    int64_t n_ctx_train = 0;  // context length the model was trained with
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;  // < n_head: grouped-query attention (1: multi-query)
    int64_t head_dim = 0;   // attention.key_length, else n_embd / n_head
    int64_t head_dim_v = 0;
    int64_t n_ff = 0;

    float norm_eps = 1e-5f;  // rms (or layer) norm epsilon

    int n_rot = 0;  // rope.dimension_count, else head_dim
    RopeMode rope_mode = RopeMode::Normal;
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling

    // Used by other architectures (0 = off).
    float attn_softcap = 0.0f;
    float final_softcap = 0.0f;
    int32_t sliding_window = 0;

    int64_t n_embd_q() const { return head_dim * n_head; }
    int64_t n_embd_k() const { return head_dim * n_head_kv; }
    int64_t n_embd_v() const { return head_dim_v * n_head_kv; }
    int64_t n_gqa() const { return n_head / n_head_kv; }
};

// Reads the keys every decoder-only architecture shares (see HParams). Throws
// lcx::Error naming the missing or inconsistent key.
HParams read_hparams(const gguf::GgufFile& file);

}  // namespace lcx
