// What one forward pass needs besides the weights: the batch of tokens, where their
// keys/values go in the KV cache and which cells each token may attend, plus the scratch
// tensors the pass writes into (allocated once per context, see Workspace).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tensor/tensor.h"

namespace lcx {

// A run of consecutive batch tokens of one sequence. Their K/V are stored in consecutive
// cache cells starting at first_cell. They attend only the cells [kv_begin, kv_begin +
// kv_positions.size()): a run holding every cell of their sequence (this batch's
// included), so a pass over several sequences does not scan each other's cells.
// kv_positions gives the position each of those cells holds for the sequence, or -1
// (another sequence's cell or an empty one: masked).
struct AttentionGroup {
    int64_t first_token = 0;
    int64_t n_tokens = 0;
    int64_t first_cell = 0;
    int64_t kv_begin = 0;
    std::span<const int32_t> kv_positions;
};

struct ForwardBatch {
    std::span<const int32_t> tokens;
    std::span<const int32_t> positions;  // one per token
    std::vector<AttentionGroup> groups;  // cover the tokens in order
    // Batch indices whose logits are wanted, in increasing order; row i of the logits
    // output belongs to outputs[i].
    std::span<const int32_t> outputs;
    // false: the pass stops after the output norm, skipping the output projection. The
    // first rows of ws.out_rows then hold the final-normed hidden states of `outputs`
    // (what embeddings pool) and ws.logits is left as it was.
    bool want_logits = true;
};

// The KV cache as the forward pass sees it: per layer one K and one V tensor of shape
// [head_dim, n_ctx, n_head_kv] (F32, F16 or Q8_0): head-major, a KV head's cells one
// contiguous block, which attention reads as one run.
struct KvTensors {
    std::vector<Tensor> k;
    std::vector<Tensor> v;
};

// Scratch activations for up to n_batch tokens; a pass over fewer tokens uses leading
// rows (Tensor::rows). Allocated by the model (Model::make_workspace) so each
// architecture can size what it needs.
struct Workspace {
    int64_t n_batch = 0;
    Tensor x;  // residual stream [n_embd, n_batch]
    // The block's normed input, later its attention output; the queries, later the block
    // output (block_activations): [max(n_embd, n_embd_q), n_batch] each.
    Tensor cur, q;
    Tensor k, v;      // projections [n_embd_k | n_embd_v, n_batch]
    Tensor gate, up;  // FFN hidden [n_ff, n_batch]
    Tensor out_rows;  // hidden rows of the outputs, output-normed in place [n_embd, n_batch]
    Tensor logits;    // [n_vocab, n_batch]
    std::vector<int32_t> index_scratch;
};

}  // namespace lcx
