#include "model/weight_binder.h"

#include "common/error.h"
#include "gguf/gguf_file.h"

namespace lcx {

namespace {

std::string shape_string(const int64_t* ne, size_t n) {
    std::string s = "[";
    for (size_t i = 0; i < n; ++i) {
        if (i) s += ", ";
        s += std::to_string(ne[i]);
    }
    return s + "]";
}

}  // namespace

std::string WeightBinder::layer_name(int64_t layer, const char* suffix) {
    return "blk." + std::to_string(layer) + "." + suffix;
}

bool WeightBinder::has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }

Tensor WeightBinder::require(const std::string& name, std::initializer_list<int64_t> shape) {
    const gguf::TensorInfo* info = file_.find_tensor(name);
    check(info != nullptr, file_.path() + ": missing tensor '" + name + "' (expected shape " +
                               shape_string(shape.begin(), shape.size()) + ")");
    // Trailing dimensions of 1 are equivalent; compare the padded 4-D shapes.
    int64_t want[4] = {1, 1, 1, 1}, have[4] = {1, 1, 1, 1};
    size_t i = 0;
    for (int64_t d : shape) want[i++] = d;
    for (size_t j = 0; j < info->shape.size() && j < 4; ++j) have[j] = info->shape[j];
    bool same = info->shape.size() <= 4;
    for (int j = 0; j < 4; ++j) same = same && want[j] == have[j];
    check(same, file_.path() + ": tensor '" + name + "' has shape " +
                    shape_string(info->shape.data(), info->shape.size()) + ", expected " +
                    shape_string(shape.begin(), shape.size()));
    check(traits(info->type).supported, file_.path() + ": tensor '" + name + "' has type " +
                                            std::string(dtype_name(info->type)) +
                                            ", which this engine cannot compute with");
    // Blocks must not straddle rows: each row is dequantized and multiplied on its own.
    const int64_t block = traits(info->type).block_size;
    check(have[0] % block == 0,
          file_.path() + ": tensor '" + name + "' (" + std::string(dtype_name(info->type)) +
              ") has rows of " + std::to_string(have[0]) +
              " values, not a multiple of the type's block size " + std::to_string(block) +
              "; its quantization blocks would cross rows (llama.cpp refuses such files too)");
    used_.insert(name);
    return file_.tensor(name);
}

Tensor WeightBinder::optional(const std::string& name, std::initializer_list<int64_t> shape) {
    if (!has(name)) return Tensor();
    return require(name, shape);
}

std::set<std::string> WeightBinder::unused() const {
    std::set<std::string> out;
    for (const auto& t : file_.tensors())
        if (!used_.count(t.name)) out.insert(t.name);
    return out;
}

}  // namespace lcx
