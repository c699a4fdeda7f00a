// AVX2 + FMA + F16C matrix products. Types without a kernel here use the reference.
#include <immintrin.h>

#include "backend/cpu/kernels.h"

namespace lcx::cpu {

namespace {

KernelTable make_table() {
    KernelTable t;
    return t;
}

}  // namespace

const KernelTable& kernels_avx2() {
    static const KernelTable t = make_table();
    return t;
}

}  // namespace lcx::cpu
