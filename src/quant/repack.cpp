#include "quant/repack.h"

#include <cstring>
#include <vector>

#include "common/error.h"
#include "quant/quant.h"

namespace lcx {

std::optional<DType> packed_layout(DType type) {
    if (type == DType::Q4_0) return DType::Q4_0_R8;
    return std::nullopt;
}

bool can_pack(DType packed, int64_t n_rows, int64_t k) {
    if (!is_packed(packed)) return false;
    const DTypeTraits& t = traits(packed);
    return n_rows > 0 && k > 0 && n_rows % t.row_group == 0 && k % t.block_size == 0;
}

void pack_rows(DType packed, const void* src, void* dst, int64_t n_rows, int64_t k) {
    check(can_pack(packed, n_rows, k), "cannot pack " + std::to_string(n_rows) + " rows of " +
                                           std::to_string(k) + " as " +
                                           std::string(dtype_name(packed)));
    const int64_t nb = k / 32;
    const auto* in = static_cast<const BlockQ4_0*>(src);
    auto* out = static_cast<BlockQ4_0x8*>(dst);
    for (int64_t g = 0; g < n_rows / 8; ++g)
        for (int64_t b = 0; b < nb; ++b) {
            BlockQ4_0x8& o = out[g * nb + b];
            uint32_t q[4][8];
            for (int r = 0; r < 8; ++r) {
                const BlockQ4_0& x = in[(8 * g + r) * nb + b];
                o.d[r] = x.d;
                uint32_t w[4];
                std::memcpy(w, x.qs, 16);
                for (int v = 0; v < 4; ++v) q[v][r] = w[v];
            }
            std::memcpy(o.qs, q, sizeof(q));
        }
}

void unpack_row(DType packed, const void* data, int64_t r, int64_t k, void* dst) {
    check(packed == DType::Q4_0_R8, "unpack_row: not a packed type");
    const int64_t nb = k / 32, g = r / 8;
    const int lane = int(r % 8);
    const auto* in = static_cast<const BlockQ4_0x8*>(data) + g * nb;
    auto* out = static_cast<BlockQ4_0*>(dst);
    for (int64_t b = 0; b < nb; ++b) {
        out[b].d = in[b].d[lane];
        for (int v = 0; v < 4; ++v) std::memcpy(out[b].qs + 4 * v, in[b].qs + 32 * v + 4 * lane, 4);
    }
}

void dequantize_packed_row(DType packed, const void* data, int64_t r, int64_t k, float* dst) {
    const DType file_type = traits(packed).file_type;
    std::vector<uint8_t> row(row_bytes(file_type, k));
    unpack_row(packed, data, r, k, row.data());
    dequantize_row(file_type, row.data(), dst, k);
}

}  // namespace lcx
