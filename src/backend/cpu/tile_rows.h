// Tiles sized at compile time for a row count known at run time.
#pragma once

#include <cstdint>
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

// The prompt panels' walk over m activation rows in tiles of kTile: calls
// f(std::integral_constant<int, NT>(), std::integral_constant<int, C>(), c) for NT tiles of
// C rows from row c: three tiles at a time, then two, one, and the last 1 to kTile - 1
// rows as one short tile.
template <int kTile, class F>
inline void for_act_tiles(int64_t m, F&& f) {
    int64_t c = 0;
    for (; c + 3 * kTile <= m; c += 3 * kTile)
        f(std::integral_constant<int, 3>(), std::integral_constant<int, kTile>(), c);
    if (c + 2 * kTile <= m) {
        f(std::integral_constant<int, 2>(), std::integral_constant<int, kTile>(), c);
        c += 2 * kTile;
    }
    if (c + kTile <= m) {
        f(std::integral_constant<int, 1>(), std::integral_constant<int, kTile>(), c);
        c += kTile;
    }
    with_rows<kTile - 1>(int(m - c),
                         [&](auto rows) { f(std::integral_constant<int, 1>(), rows, c); });
}

}  // namespace lcx::cpu
