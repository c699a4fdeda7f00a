// Binds weight tensors by name, checking each one's shape, with errors that name the
// tensor, the file and what was expected. Records which tensors were used so the model
// can warn about leftovers (a sign of a misread architecture).
#pragma once

#include <initializer_list>
#include <set>
#include <string>

#include "tensor/tensor.h"

namespace lcx {

namespace gguf {
class GgufFile;
}

class WeightBinder {
  public:
    explicit WeightBinder(const gguf::GgufFile& file) : file_(file) {}

    // The tensor `name` with exactly `shape` (ggml order); throws when missing or wrong.
    Tensor require(const std::string& name, std::initializer_list<int64_t> shape);
    // Same, but an absent tensor gives an empty Tensor.
    Tensor optional(const std::string& name, std::initializer_list<int64_t> shape);
    bool has(const std::string& name) const;

    // "blk.<layer>.<suffix>"
    static std::string layer_name(int64_t layer, const char* suffix);

    // Names of the file's tensors that no require()/optional() call bound.
    std::set<std::string> unused() const;

  private:
    const gguf::GgufFile& file_;
    std::set<std::string> used_;
};

}  // namespace lcx
