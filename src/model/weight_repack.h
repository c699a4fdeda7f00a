// Puts the weights that only matmul reads into the layout a backend multiplies fastest
// (Backend::matmul_layout, quant/repack.h), once, when a model is loaded for it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "gguf/gguf_file.h"
#include "model/weights.h"

namespace lcx {

struct RepackStats {
    int64_t tensors = 0;    // weights now in a packed layout
    size_t bytes = 0;       // their size
    size_t file_bytes = 0;  // their size in the file
};

// The packed copies live in one anonymous buffer (huge pages where the OS grants them)
// that the tensors keep alive; the file's pages they came from are released, so the
// resident set stays the model's size. Token embeddings (read by row) and an output tied
// to them stay in the file layout.
RepackStats repack_weights(ModelWeights& w, const gguf::GgufFile& file, Backend& backend);

}  // namespace lcx
