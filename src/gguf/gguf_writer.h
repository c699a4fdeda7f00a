// Writes GGUF v3 files: header, metadata in the order given, tensor infos, and tensor
// data each aligned to `general.alignment` (32 unless the metadata says otherwise), with
// zero padding, as the specification requires.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf_value.h"
#include "tensor/dtype.h"

namespace lcx::gguf {

class GgufWriter {
  public:
    void add(std::string key, Value value);  // replaces an existing key in place
    void add_tensor(std::string name, DType type, std::vector<int64_t> shape,
                    std::span<const uint8_t> data);  // data is copied
    // Serialises everything to bytes / to a file (written to a temporary, then renamed).
    std::vector<uint8_t> to_bytes() const;
    void write(const std::filesystem::path& path) const;

  private:
    struct PendingTensor {
        std::string name;
        DType type;
        std::vector<int64_t> shape;
        std::vector<uint8_t> data;
    };
    std::vector<KeyValue> metadata_;
    std::vector<PendingTensor> tensors_;
};

}  // namespace lcx::gguf
