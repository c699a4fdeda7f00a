// Tiles sized at compile time for a row count known at run time.
#pragma once

#include <type_traits>

namespace lcx::cpu {

// Calls f(std::integral_constant<int, rem>()) when 1 <= rem <= kMax: a tile for the last
// rem activation rows. Each ISA file passes its own lambdas, so every instantiation is
// local to the file that makes it and compiled with that file's instruction set.
template <int kMax, class F>
inline void with_rows(int rem, F&& f) {
    if constexpr (kMax > 0) {
        if (rem == kMax)
            f(std::integral_constant<int, kMax>());
        else
            with_rows<kMax - 1>(rem, f);
    }
}

}  // namespace lcx::cpu
