// Writes GGUF v3 files: header, metadata in the order given, tensor infos, and tensor
// data each aligned to `general.alignment` (32 unless the metadata says otherwise), with
// zero padding, as the specification requires.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
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
    // Like add_tensor, but keeps only a view: the caller keeps `data` alive until the
    // last to_bytes()/write(). For large models (e.g. re-writing a mapped GgufFile)
    // this avoids holding a second copy of every weight in memory.
    void add_tensor_view(std::string name, DType type, std::vector<int64_t> shape,
                         std::span<const uint8_t> data);
    // A tensor whose bytes are made only when write() or to_bytes() reaches it, and
    // dropped before the next tensor's are made: a converter (quantize) then holds one
    // converted tensor at a time, not the whole output. `produce` must return the bytes
    // the shape needs, or the write fails.
    void add_tensor_lazy(std::string name, DType type, std::vector<int64_t> shape,
                         std::function<std::vector<uint8_t>()> produce);
    // Serialises everything to bytes / to a file (written to a temporary, then renamed).
    // write() streams tensor data to the file without building the whole file in memory.
    std::vector<uint8_t> to_bytes() const;
    void write(const std::filesystem::path& path) const;

    const std::vector<KeyValue>& metadata() const { return metadata_; }

  private:
    struct PendingTensor {
        std::string name;
        DType type;
        std::vector<int64_t> shape;
        // Shared so that copies of the writer keep `data` valid; null for views.
        std::shared_ptr<const std::vector<uint8_t>> owned;
        std::span<const uint8_t> data;                  // into `owned` or the caller's bytes
        std::function<std::vector<uint8_t>()> produce;  // set for a lazy tensor
        uint64_t n_bytes = 0;
    };
    void check_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape,
                      size_t n_bytes) const;
    // The bytes a tensor of this type and shape takes; throws if the shape does not fit
    // the type or the name is taken.
    uint64_t tensor_bytes(const std::string& name, DType type,
                          const std::vector<int64_t>& shape) const;
    uint64_t alignment() const;
    template <class Sink>
    void serialize(Sink& sink) const;
    std::vector<KeyValue> metadata_;
    std::vector<PendingTensor> tensors_;
};

}  // namespace lcx::gguf
