// A thread's scratch buffer for the prompt panels of the AVX-512 path.
#pragma once

#include <cstddef>

namespace lcx::cpu {

// Not std::vector: a library template instantiated in an AVX-512 file is compiled for
// AVX-512, and the linker may keep that copy for the other files too. The same holds for
// this template, so only the *_avx512.cpp files may include this header.
template <class T>
struct PanelBuffer {
    T* p = nullptr;
    size_t n = 0;
    PanelBuffer() = default;
    PanelBuffer(const PanelBuffer&) = delete;
    PanelBuffer& operator=(const PanelBuffer&) = delete;
    ~PanelBuffer() { delete[] p; }
    T* get(size_t want) {
        if (want > n) {
            delete[] p;
            p = new T[want];
            n = want;
        }
        return p;
    }
};

}  // namespace lcx::cpu
