#include "model/architecture.h"

#include "common/error.h"

namespace lcx {

namespace {

// The registry: add one line per architecture file.
using ArchAccessor = const Architecture& (*)();
constexpr ArchAccessor kArchitectures[] = {
    &llama_architecture,  &qwen2_architecture, &gemma_architecture,
    &gemma2_architecture, &phi3_architecture,  &starcoder2_architecture,
};

}  // namespace

std::vector<std::string_view> supported_architectures() {
    std::vector<std::string_view> names;
    for (ArchAccessor a : kArchitectures) names.push_back(a().name());
    return names;
}

const Architecture& find_architecture(std::string_view name) {
    for (ArchAccessor a : kArchitectures)
        if (a().name() == name) return a();
    std::string known;
    for (auto n : supported_architectures()) known += (known.empty() ? "" : ", ") + std::string(n);
    throw Error("unsupported model architecture '" + std::string(name) + "' (supported: " + known +
                ")");
}

}  // namespace lcx
