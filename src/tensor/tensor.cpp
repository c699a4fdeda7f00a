#include "tensor/tensor.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace lcx {

void Tensor::set_shape(std::span<const int64_t> shape) {
    check(!shape.empty() && shape.size() <= 4, "tensor must have 1 to 4 dimensions");
    n_dims_ = int(shape.size());
    ne_ = {1, 1, 1, 1};
    for (size_t i = 0; i < shape.size(); ++i) {
        check(shape[i] >= 0, "tensor dimension is negative");
        ne_[i] = shape[i];
    }
    const auto& t = traits(type_);
    // Views are made per op: the message is built only on failure.
    if (ne_[0] % t.block_size != 0)
        throw Error("row length " + std::to_string(ne_[0]) +
                    " is not a multiple of the block size of " + std::string(t.name));
    nb_[0] = t.block_bytes;
    nb_[1] = row_bytes(type_, ne_[0]);
    nb_[2] = nb_[1] * size_t(ne_[1]);
    nb_[3] = nb_[2] * size_t(ne_[2]);
}

namespace {

// Zeroed storage of `bytes` bytes, 64-byte aligned. Large blocks come straight from the
// kernel: its pages are zero already and take memory only once written, so a workspace
// sized for the largest batch (or a KV cache sized for the whole context) costs resident
// memory only for what a run actually uses.
constexpr size_t kMapThreshold = size_t(1) << 20;

std::shared_ptr<const void> alloc_zeroed(size_t bytes) {
    if (bytes >= kMapThreshold) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
        return std::shared_ptr<const void>(
            p, [bytes](const void* q) { munmap(const_cast<void*>(q), bytes); });
    }
    const size_t alloc = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, alloc);
    if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(p, 0, alloc);
    return std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
}

}  // namespace

Tensor Tensor::zeros(DType type, std::span<const int64_t> shape) {
    Tensor t;
    t.type_ = type;
    t.set_shape(shape);
    t.storage_ = alloc_zeroed(t.n_bytes());
    t.data_ = const_cast<void*>(t.storage_.get());
    return t;
}

Tensor Tensor::borrow(DType type, std::span<const int64_t> shape, const void* data,
                      std::shared_ptr<const void> keep_alive) {
    Tensor t;
    t.type_ = type;
    t.set_shape(shape);
    t.data_ = const_cast<void*>(data);
    t.storage_ = std::move(keep_alive);
    return t;
}

size_t Tensor::n_bytes() const {
    if (is_contiguous()) return nb_[3] * size_t(ne_[3]);
    size_t end = row_bytes(type_, ne_[0]);
    for (int i = 1; i < 4; ++i) end += size_t(ne_[i] - 1) * nb_[i];
    return end;
}

bool Tensor::is_contiguous() const {
    return nb_[1] == row_bytes(type_, ne_[0]) && nb_[2] == nb_[1] * size_t(ne_[1]) &&
           nb_[3] == nb_[2] * size_t(ne_[2]);
}

Tensor Tensor::rows(int64_t first, int64_t count) const {
    check(first >= 0 && count >= 0 && first + count <= n_rows(), "row range out of bounds");
    check(is_contiguous(), "rows() needs a contiguous tensor");
    Tensor v = *this;
    const int64_t shape[2] = {ne_[0], count};
    v.set_shape(shape);
    v.data_ = static_cast<uint8_t*>(data_) + size_t(first) * nb_[1];
    return v;
}

Tensor Tensor::view(std::span<const int64_t> shape, std::span<const size_t> strides,
                    size_t offset) const {
    check(!shape.empty() && shape.size() <= 4 && strides.size() + 1 == shape.size(),
          "view: one stride per dimension after the first");
    Tensor v = *this;
    v.set_shape(shape);
    for (size_t i = 0; i < strides.size(); ++i) v.nb_[i + 1] = strides[i];
    // The last byte of the view's last row, which must not pass this tensor's last byte.
    size_t end = offset + v.row_size();
    for (size_t i = 1; i < shape.size(); ++i) {
        check(shape[i] >= 1, "view: empty dimension");
        end += size_t(shape[i] - 1) * v.nb_[i];
    }
    check(v.nb_[1] >= v.row_size() && end <= n_bytes(), "view: rows outside the tensor");
    v.data_ = static_cast<uint8_t*>(data_) + offset;
    return v;
}

Tensor Tensor::reshape(std::span<const int64_t> shape) const {
    check(is_contiguous(), "reshape() needs a contiguous tensor");
    Tensor v = *this;
    v.set_shape(shape);
    check(v.n_elements() == n_elements(), "reshape changes the element count");
    return v;
}

}  // namespace lcx
