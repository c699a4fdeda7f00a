// A tensor: element type, up to 4 dimensions in ggml order (ne[0] is the innermost,
// contiguous dimension: the row length), byte strides, and a pointer to its bytes.
// The bytes are either owned (shared with views of the same buffer) or borrowed from a
// memory-mapped file that outlives the tensor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "tensor/dtype.h"

namespace lcx {

class Tensor {
  public:
    Tensor() = default;

    // A new zero-filled tensor with contiguous strides, 64-byte aligned.
    static Tensor zeros(DType type, std::span<const int64_t> shape);
    static Tensor zeros(DType type, std::initializer_list<int64_t> shape) {
        return zeros(type, std::span<const int64_t>(shape.begin(), shape.size()));
    }
    // A contiguous tensor over bytes someone else owns (e.g. a mapped file). `keep_alive`
    // may hold the owner; pass nullptr when the owner outlives the tensor by construction.
    static Tensor borrow(DType type, std::span<const int64_t> shape, const void* data,
                         std::shared_ptr<const void> keep_alive = nullptr);

    DType type() const { return type_; }
    int n_dims() const { return n_dims_; }
    int64_t ne(int i) const { return ne_[size_t(i)]; }
    size_t nb(int i) const { return nb_[size_t(i)]; }
    const std::array<int64_t, 4>& shape() const { return ne_; }
    int64_t n_elements() const { return ne_[0] * ne_[1] * ne_[2] * ne_[3]; }
    int64_t n_rows() const { return ne_[1] * ne_[2] * ne_[3]; }
    size_t row_size() const { return row_bytes(type_, ne_[0]); }
    size_t n_bytes() const;  // bytes spanned by the elements (contiguous: rows × row_size)
    bool is_contiguous() const;
    bool empty() const { return data_ == nullptr; }

    void* data() { return data_; }
    const void* data() const { return data_; }
    template <class T>
    T* data_as() {
        return static_cast<T*>(data_);
    }
    template <class T>
    const T* data_as() const {
        return static_cast<const T*>(data_);
    }
    // Pointer to row (i1, i2, i3).
    const uint8_t* row(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) const {
        return static_cast<const uint8_t*>(data_) + i1 * nb_[1] + i2 * nb_[2] + i3 * nb_[3];
    }
    uint8_t* row(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) {
        return static_cast<uint8_t*>(data_) + i1 * nb_[1] + i2 * nb_[2] + i3 * nb_[3];
    }

    // A view of rows [first, first + count) of a 2-D (or flattened) tensor; shares storage.
    Tensor rows(int64_t first, int64_t count) const;
    // A view of the same bytes with its own shape and byte strides (rows stay contiguous:
    // strides[0] is implied), starting `offset` bytes in: e.g. one slice of every head of a
    // cache. Throws unless every row of the view lies inside this tensor's bytes.
    Tensor view(std::span<const int64_t> shape, std::span<const size_t> strides,
                size_t offset) const;
    Tensor view(std::initializer_list<int64_t> shape, std::initializer_list<size_t> strides,
                size_t offset) const {
        return view(std::span<const int64_t>(shape.begin(), shape.size()),
                    std::span<const size_t>(strides.begin(), strides.size()), offset);
    }
    // Same bytes, new contiguous shape with the same element count.
    Tensor reshape(std::span<const int64_t> shape) const;
    Tensor reshape(std::initializer_list<int64_t> shape) const {
        return reshape(std::span<const int64_t>(shape.begin(), shape.size()));
    }

    const std::string& name() const { return name_; }
    void set_name(std::string name) { name_ = std::move(name); }

  private:
    void set_shape(std::span<const int64_t> shape);

    DType type_ = DType::F32;
    int n_dims_ = 0;
    std::array<int64_t, 4> ne_{1, 1, 1, 1};
    std::array<size_t, 4> nb_{};
    void* data_ = nullptr;
    std::shared_ptr<const void> storage_;
    std::string name_;
};

}  // namespace lcx
