// The weight tensors of a decoder-only transformer, bound by name from a GGUF file as
// zero-copy views of the mapping. One layout for every architecture: a tensor an
// architecture does not have stays empty (Tensor::empty()).
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace lcx {

struct LayerWeights {
    // attention
    Tensor attn_norm, attn_norm_b;
    Tensor wq, wk, wv, wo;
    Tensor wqkv;  // fused q,k,v (phi3)
    Tensor bq, bk, bv, bo;
    Tensor attn_post_norm;  // gemma2
    // feed-forward
    Tensor ffn_norm, ffn_norm_b;
    Tensor ffn_gate, ffn_up, ffn_down;
    Tensor ffn_up_b, ffn_down_b;
    Tensor ffn_post_norm;  // gemma2
};

struct ModelWeights {
    Tensor tok_embd;
    Tensor output_norm, output_norm_b;
    Tensor output;  // the token embedding itself when the file ties them
    bool tied_output = false;
    std::vector<LayerWeights> layers;
};

}  // namespace lcx
