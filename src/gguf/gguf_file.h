// A parsed, validated GGUF file (v1, v2 or v3). The file is memory-mapped; tensor data
// is never copied: tensor() returns views into the mapping, which lives as long as any
// GgufFile copy or any Tensor made from it.
//
// Everything read from the file is bounds-checked before use; any inconsistency throws
// lcx::Error naming the problem, the byte offset and the key or tensor concerned.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_value.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace lcx::gguf {

constexpr uint64_t kDefaultAlignment = 32;

struct TensorInfo {
    std::string name;
    DType type = DType::F32;
    std::vector<int64_t> shape;  // ggml order: shape[0] is the row length
    uint64_t offset = 0;         // relative to the start of the data section
    uint64_t n_bytes = 0;
    int64_t n_elements() const;
};

class GgufFile {
  public:
    // Maps and validates the file.
    static GgufFile open(const std::filesystem::path& path);
    // Parses bytes already in memory (tests, fuzzing, the embedded model). With
    // `copy` false the caller keeps `bytes` alive for the life of the GgufFile.
    static GgufFile from_memory(std::span<const uint8_t> bytes, bool copy = true,
                                std::string display_name = "<memory>");

    const std::string& path() const;
    uint32_t version() const;
    uint64_t alignment() const;
    uint64_t file_size() const;
    uint64_t data_offset() const;  // absolute offset of the tensor data section

    // Metadata in file order.
    const std::vector<KeyValue>& metadata() const;
    const Value* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed getters: nullopt when absent; lcx::Error when present with a wrong type.
    std::optional<std::string> get_string(std::string_view key) const;
    std::optional<int64_t> get_int(std::string_view key) const;
    std::optional<uint64_t> get_uint(std::string_view key) const;
    std::optional<double> get_float(std::string_view key) const;
    std::optional<bool> get_bool(std::string_view key) const;
    const Array* get_array(std::string_view key) const;

    // Tensors in file order.
    const std::vector<TensorInfo>& tensors() const;
    const TensorInfo* find_tensor(std::string_view name) const;
    // Raw bytes of a tensor inside the mapping.
    std::span<const uint8_t> tensor_bytes(const TensorInfo& info) const;
    // A zero-copy Tensor view (keeps the mapping alive). Throws for unknown names.
    Tensor tensor(std::string_view name) const;

    // Tells the OS that this process no longer needs the mapped pages lying wholly inside
    // `bytes` (part of this file's mapping), so they leave its resident set; reading them
    // later still works (the file is read again). A no-op for files given in memory.
    void release_pages(const void* bytes, size_t n) const;

  private:
    struct State;
    // A default-constructed GgufFile behaves as an empty file (version 0, no keys).
    const State& st() const;
    std::shared_ptr<const State> state_;
};

}  // namespace lcx::gguf
