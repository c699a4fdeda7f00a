#include "tensor/dtype.h"

#include <array>
#include <cassert>
#include <cctype>

namespace lcx {
namespace {

constexpr DTypeTraits kTraits[] = {
    {DType::F32, "F32", 1, 4, false, true},
    {DType::F16, "F16", 1, 2, false, true},
    {DType::Q4_0, "Q4_0", 32, 18, true, true},
    {DType::Q4_1, "Q4_1", 32, 20, true, true},
    {DType::Q5_0, "Q5_0", 32, 22, true, true},
    {DType::Q5_1, "Q5_1", 32, 24, true, true},
    {DType::Q8_0, "Q8_0", 32, 34, true, true},
    {DType::Q8_1, "Q8_1", 32, 36, true, true},
    {DType::Q2_K, "Q2_K", 256, 84, true, true},
    {DType::Q3_K, "Q3_K", 256, 110, true, true},
    {DType::Q4_K, "Q4_K", 256, 144, true, true},
    {DType::Q5_K, "Q5_K", 256, 176, true, true},
    {DType::Q6_K, "Q6_K", 256, 210, true, true},
    {DType::Q8_K, "Q8_K", 256, 292, true, true},
    {DType::IQ2_XXS, "IQ2_XXS", 256, 66, true, false},
    {DType::IQ2_XS, "IQ2_XS", 256, 74, true, false},
    {DType::IQ3_XXS, "IQ3_XXS", 256, 98, true, false},
    {DType::IQ1_S, "IQ1_S", 256, 50, true, false},
    {DType::IQ4_NL, "IQ4_NL", 32, 18, true, true},
    {DType::IQ3_S, "IQ3_S", 256, 110, true, false},
    {DType::IQ2_S, "IQ2_S", 256, 82, true, false},
    {DType::IQ4_XS, "IQ4_XS", 256, 136, true, true},
    {DType::I8, "I8", 1, 1, false, true},
    {DType::I16, "I16", 1, 2, false, true},
    {DType::I32, "I32", 1, 4, false, true},
    {DType::I64, "I64", 1, 8, false, false},
    {DType::F64, "F64", 1, 8, false, false},
    {DType::IQ1_M, "IQ1_M", 256, 56, true, false},
    {DType::BF16, "BF16", 1, 2, false, true},
    {DType::TQ1_0, "TQ1_0", 256, 54, true, false},
    {DType::TQ2_0, "TQ2_0", 256, 66, true, false},
    {DType::MXFP4, "MXFP4", 32, 17, true, false},
    {DType::Q4_0_R8, "Q4_0_R8", 32, 18, true, true, 8, DType::Q4_0},
    {DType::Q4_K_R8, "Q4_K_R8", 256, 144, true, true, 8, DType::Q4_K},
    {DType::Q8_0_R8, "Q8_0_R8", 32, 34, true, true, 8, DType::Q8_0},
    {DType::Q5_K_R8, "Q5_K_R8", 256, 176, true, true, 8, DType::Q5_K},
};

constexpr size_t kMaxId = kFirstPackedId + 8;

constexpr std::array<int, kMaxId> build_index() {
    std::array<int, kMaxId> idx{};
    for (auto& v : idx) v = -1;
    for (size_t i = 0; i < std::size(kTraits); ++i) idx[uint32_t(kTraits[i].type)] = int(i);
    return idx;
}
constexpr auto kIndex = build_index();

}  // namespace

std::optional<DTypeTraits> dtype_traits(uint32_t id) {
    if (id >= kFirstPackedId || kIndex[id] < 0) return std::nullopt;
    return kTraits[kIndex[id]];
}

const DTypeTraits& traits(DType type) {
    const auto id = uint32_t(type);
    assert(id < kMaxId && kIndex[id] >= 0);
    return kTraits[kIndex[id]];
}

std::string_view dtype_name(DType type) { return traits(type).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
    for (const auto& t : kTraits) {
        if (is_packed(t.type) || t.name.size() != name.size()) continue;
        bool eq = true;
        for (size_t i = 0; i < name.size() && eq; ++i)
            eq = std::toupper(static_cast<unsigned char>(name[i])) == t.name[i];
        if (eq) return t.type;
    }
    return std::nullopt;
}

}  // namespace lcx
