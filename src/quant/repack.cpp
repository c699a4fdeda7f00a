#include "quant/repack.h"

#include <cstring>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "quant/quant.h"

namespace lcx {

std::optional<DType> packed_layout(DType type) {
    if (type == DType::Q4_0) return DType::Q4_0_R8;
    if (type == DType::Q4_K) return DType::Q4_K_R8;
    if (type == DType::Q5_K) return DType::Q5_K_R8;
    if (type == DType::Q8_0) return DType::Q8_0_R8;
    return std::nullopt;
}

namespace {

// The legacy formats (an f16 d, then qs): the 8 rows' scales, then group v (4 bytes) of
// every row side by side.
template <class In, class Out>
void pack_legacy(const In* in, Out* out, int64_t groups, int64_t nb) {
    constexpr int kGroups = int(sizeof(In::qs)) / 4;
    static_assert(sizeof(Out::qs) == 8 * sizeof(In::qs));
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t b = 0; b < nb; ++b) {
            Out& o = out[g * nb + b];
            for (int r = 0; r < 8; ++r) {
                const In& x = in[(8 * g + r) * nb + b];
                o.d[r] = x.d;
                for (int v = 0; v < kGroups; ++v) std::memcpy(o.qs[v] + 4 * r, x.qs + 4 * v, 4);
            }
        }
}

template <class Packed, class Out>
void unpack_legacy(const Packed* in, Out* out, int64_t nb, int lane) {
    constexpr int kGroups = int(sizeof(Out::qs)) / 4;
    for (int64_t b = 0; b < nb; ++b) {
        out[b].d = in[b].d[lane];
        for (int v = 0; v < kGroups; ++v) std::memcpy(out[b].qs + 4 * v, in[b].qs[v] + 4 * lane, 4);
    }
}

// Q4_K and Q5_K into Q4_K_R8 and Q5_K_R8: the same scales, mins and low 4 bits, and for
// Q5_K the fifth bits, in the layouts of quant/repack.h.
template <class In, class Out>
void pack_k45(const In* in, Out* out, int64_t groups, int64_t nb) {
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t b = 0; b < nb; ++b) {
            Out& o = out[g * nb + b];
            std::memset(o.scales_lo, 0, sizeof(o.scales_lo));
            std::memset(o.mins_lo, 0, sizeof(o.mins_lo));
            std::memset(o.high, 0, sizeof(o.high));
            if constexpr (std::is_same_v<In, BlockQ5_K>) std::memset(o.qh, 0, sizeof(o.qh));
            for (int r = 0; r < 8; ++r) {
                const In& x = in[(8 * g + r) * nb + b];
                o.d[r] = x.d;
                o.dmin[r] = x.dmin;
                uint8_t sc[8], mn[8];
                get_scales_mins_k4(x.scales, sc, mn);
                for (int j = 0; j < 8; ++j) q4_kx8_set_scale_min(o, j, r, sc[j], mn[j]);
                for (int p = 0; p < 4; ++p)
                    for (int v = 0; v < 8; ++v) {
                        std::memcpy(o.qs[p][v] + 4 * r, x.qs + 32 * p + 4 * v, 4);
                        if constexpr (std::is_same_v<In, BlockQ5_K>)
                            for (int i = 0; i < 4; ++i) {
                                const int h = (x.qh[4 * v + i] >> (2 * p)) & 3;
                                o.qh[p][v / 4][4 * r + i] |= uint8_t(h << (2 * (v % 4)));
                            }
                    }
            }
        }
}

// The 12 bytes get_scales_mins_k4 decodes (every bit is used: the encoding is one to one).
void encode_scales_mins_k4(const uint8_t sc[8], const uint8_t mn[8], uint8_t q[12]) {
    for (int j = 0; j < 4; ++j) {
        q[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = uint8_t((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = uint8_t((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

template <class Packed, class Out>
void unpack_k45(const Packed* in, Out* out, int64_t nb, int lane) {
    for (int64_t b = 0; b < nb; ++b) {
        out[b].d = in[b].d[lane];
        out[b].dmin = in[b].dmin[lane];
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; ++j) {
            sc[j] = q4_kx8_scale(in[b], j, lane);
            mn[j] = q4_kx8_min(in[b], j, lane);
        }
        encode_scales_mins_k4(sc, mn, out[b].scales);
        if constexpr (std::is_same_v<Out, BlockQ5_K>) std::memset(out[b].qh, 0, sizeof(out[b].qh));
        for (int p = 0; p < 4; ++p)
            for (int v = 0; v < 8; ++v) {
                std::memcpy(out[b].qs + 32 * p + 4 * v, in[b].qs[p][v] + 4 * lane, 4);
                if constexpr (std::is_same_v<Out, BlockQ5_K>)
                    for (int i = 0; i < 4; ++i) {
                        const int h = (in[b].qh[p][v / 4][4 * lane + i] >> (2 * (v % 4))) & 3;
                        out[b].qh[4 * v + i] |= uint8_t(h << (2 * p));
                    }
            }
    }
}

}  // namespace

bool can_pack(DType packed, int64_t n_rows, int64_t k) {
    if (!is_packed(packed)) return false;
    const DTypeTraits& t = traits(packed);
    return n_rows > 0 && k > 0 && n_rows % t.row_group == 0 && k % t.block_size == 0;
}

void pack_rows(DType packed, const void* src, void* dst, int64_t n_rows, int64_t k) {
    if (!can_pack(packed, n_rows, k))
        throw Error("cannot pack " + std::to_string(n_rows) + " rows of " + std::to_string(k) +
                    " as " + std::string(dtype_name(packed)));
    if (packed == DType::Q4_0_R8)
        pack_legacy(static_cast<const BlockQ4_0*>(src), static_cast<BlockQ4_0x8*>(dst), n_rows / 8,
                    k / 32);
    else if (packed == DType::Q8_0_R8)
        pack_legacy(static_cast<const BlockQ8_0*>(src), static_cast<BlockQ8_0x8*>(dst), n_rows / 8,
                    k / 32);
    else if (packed == DType::Q4_K_R8)
        pack_k45(static_cast<const BlockQ4_K*>(src), static_cast<BlockQ4_Kx8*>(dst), n_rows / 8,
                 k / 256);
    else
        pack_k45(static_cast<const BlockQ5_K*>(src), static_cast<BlockQ5_Kx8*>(dst), n_rows / 8,
                 k / 256);
}

void unpack_row(DType packed, const void* data, int64_t r, int64_t k, void* dst) {
    check(is_packed(packed), "unpack_row: not a packed type");
    const int64_t g = r / 8;
    const int lane = int(r % 8);
    if (packed == DType::Q4_K_R8) {
        unpack_k45(static_cast<const BlockQ4_Kx8*>(data) + g * (k / 256),
                   static_cast<BlockQ4_K*>(dst), k / 256, lane);
        return;
    }
    if (packed == DType::Q5_K_R8) {
        unpack_k45(static_cast<const BlockQ5_Kx8*>(data) + g * (k / 256),
                   static_cast<BlockQ5_K*>(dst), k / 256, lane);
        return;
    }
    if (packed == DType::Q8_0_R8)
        unpack_legacy(static_cast<const BlockQ8_0x8*>(data) + g * (k / 32),
                      static_cast<BlockQ8_0*>(dst), k / 32, lane);
    else
        unpack_legacy(static_cast<const BlockQ4_0x8*>(data) + g * (k / 32),
                      static_cast<BlockQ4_0*>(dst), k / 32, lane);
}

void dequantize_packed_row(DType packed, const void* data, int64_t r, int64_t k, float* dst) {
    const DType file_type = traits(packed).file_type;
    std::vector<uint8_t> row(row_bytes(file_type, k));
    unpack_row(packed, data, r, k, row.data());
    dequantize_row(file_type, row.data(), dst, k);
}

}  // namespace lcx
