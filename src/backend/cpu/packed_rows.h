// The decode driver of the packed layouts (quant/repack.h), shared by the ISA files: each
// instantiates it with its own kernels, so every copy is local to the file that makes it
// and compiled with that file's instruction set.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

// Each group of 8 packed rows against all activation rows, up to 3 at a time: the group's
// later passes read it from cache. P supplies Block, kBlockK (weights per block) and
// rows<C>(), one group against activation rows [c0, c0 + C).
template <class P>
void packed_vec(const Tensor& w, int64_t n0, int64_t n1, const ActRows& a, float* y, size_t ys) {
    check_packed_range(w, n0, n1);
    const int64_t nb = a.k / P::kBlockK;
    const auto* groups = reinterpret_cast<const typename P::Block*>(w.data());
    for (int64_t n = n0; n < n1; n += 8) {
        const auto* x = groups + (n / 8) * nb;
        int64_t c = 0;
        for (; c + 3 <= a.m; c += 3) P::template rows<3>(x, a, c, y + n, ys);
        if (a.m - c == 2) P::template rows<2>(x, a, c, y + n, ys);
        if (a.m - c == 1) P::template rows<1>(x, a, c, y + n, ys);
    }
}

}  // namespace lcx::cpu
