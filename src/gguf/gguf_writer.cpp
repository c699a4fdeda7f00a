#include "gguf/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "common/error.h"
#include "gguf/gguf_file.h"

namespace lcx::gguf {

namespace {

constexpr uint32_t kVersion = 3;

struct VectorSink {
    std::vector<uint8_t>& out;
    void write(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        out.insert(out.end(), b, b + n);
    }
};

struct FileSink {
    std::FILE* f;
    std::string name;
    void write(const void* p, size_t n) {
        if (n && std::fwrite(p, 1, n, f) != n)
            throw Error(name + ": write failed: " + std::strerror(errno));
    }
};

template <class Sink, class T>
void put(Sink& s, T x) {
    s.write(&x, sizeof(T));
}

template <class Sink>
void put_string(Sink& s, const std::string& str) {
    put<Sink, uint64_t>(s, str.size());
    s.write(str.data(), str.size());
}

template <class Sink>
void put_zeros(Sink& s, uint64_t n) {
    static const uint8_t zeros[256] = {};
    while (n > 0) {
        const size_t k = n < sizeof(zeros) ? size_t(n) : sizeof(zeros);
        s.write(zeros, k);
        n -= k;
    }
}

void check_value(const std::string& key, const Value& v) {
    if (const Array* a = v.as_array()) {
        check(uint32_t(a->elem_type) <= uint32_t(ValueType::FLOAT64),
              "GgufWriter: key '" + key + "': unknown array element type");
        for (const Value& item : a->items) {
            check(item.type() == a->elem_type, "GgufWriter: key '" + key + "': array of " +
                                                   std::string(value_type_name(a->elem_type)) +
                                                   " holds a " +
                                                   std::string(value_type_name(item.type())));
            check_value(key, item);
        }
    }
}

template <class Sink>
void put_value(Sink& s, const Value& v) {
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                put_string(s, x);
            } else if constexpr (std::is_same_v<T, Array>) {
                put<Sink, uint32_t>(s, uint32_t(x.elem_type));
                put<Sink, uint64_t>(s, x.items.size());
                for (const Value& item : x.items) put_value(s, item);
            } else if constexpr (std::is_same_v<T, bool>) {
                put<Sink, uint8_t>(s, x ? 1 : 0);
            } else {
                put<Sink, T>(s, x);
            }
        },
        v.v);
}

uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

}  // namespace

void GgufWriter::add(std::string key, Value value) {
    check_value(key, value);
    if (key == "general.alignment") {
        const auto a = value.as_uint();
        check(value.is_integer() && a && *a != 0 && (*a & (*a - 1)) == 0 && *a <= (1u << 30),
              "GgufWriter: general.alignment must be a nonzero power of two");
    }
    for (KeyValue& kv : metadata_) {
        if (kv.key == key) {
            kv.value = std::move(value);
            return;
        }
    }
    metadata_.push_back(KeyValue{std::move(key), std::move(value)});
}

void GgufWriter::check_tensor(const std::string& name, DType type,
                              const std::vector<int64_t>& shape, size_t n_bytes) const {
    const uint64_t expected = tensor_bytes(name, type, shape);
    check(expected == n_bytes, "GgufWriter: tensor '" + name + "': " + std::to_string(n_bytes) +
                                   " bytes given, shape needs " + std::to_string(expected));
}

uint64_t GgufWriter::tensor_bytes(const std::string& name, DType type,
                                  const std::vector<int64_t>& shape) const {
    const std::string where = "GgufWriter: tensor '" + name + "'";
    check(dtype_traits(uint32_t(type)).has_value(), where + ": unknown type");
    check(shape.size() <= 4, where + ": more than 4 dimensions");
    for (const PendingTensor& t : tensors_) check(t.name != name, where + ": duplicate name");
    int64_t n = 1;
    for (int64_t d : shape) {
        check(d >= 0, where + ": negative dimension");
        check(!__builtin_mul_overflow(n, d, &n), where + ": element count overflows");
    }
    const auto& tr = traits(type);
    const int64_t row = shape.empty() ? 1 : shape[0];
    check(row % tr.block_size == 0, where + ": row length " + std::to_string(row) +
                                        " is not a multiple of the " + std::string(tr.name) +
                                        " block size");
    return uint64_t(n / tr.block_size) * tr.block_bytes;
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<int64_t> shape,
                            std::span<const uint8_t> data) {
    check_tensor(name, type, shape, data.size());
    auto owned = std::make_shared<const std::vector<uint8_t>>(data.begin(), data.end());
    std::span<const uint8_t> view(owned->data(), owned->size());
    tensors_.push_back(PendingTensor{std::move(name), type, std::move(shape), std::move(owned),
                                     view, nullptr, view.size()});
}

void GgufWriter::add_tensor_view(std::string name, DType type, std::vector<int64_t> shape,
                                 std::span<const uint8_t> data) {
    check_tensor(name, type, shape, data.size());
    tensors_.push_back(PendingTensor{std::move(name), type, std::move(shape), nullptr, data,
                                     nullptr, data.size()});
}

void GgufWriter::add_tensor_lazy(std::string name, DType type, std::vector<int64_t> shape,
                                 std::function<std::vector<uint8_t>()> produce) {
    check(bool(produce), "GgufWriter: tensor '" + name + "': no producer");
    const uint64_t n = tensor_bytes(name, type, shape);
    tensors_.push_back(
        PendingTensor{std::move(name), type, std::move(shape), nullptr, {}, std::move(produce), n});
}

uint64_t GgufWriter::alignment() const {
    for (const KeyValue& kv : metadata_)
        if (kv.key == "general.alignment") return *kv.value.as_uint();
    return kDefaultAlignment;
}

template <class Sink>
void GgufWriter::serialize(Sink& s) const {
    const uint64_t align = alignment();
    uint64_t pos = 0;
    // Count bytes as they go out so that padding can be computed without seeking.
    struct Counting {
        Sink& inner;
        uint64_t& pos;
        void write(const void* p, size_t n) {
            inner.write(p, n);
            pos += n;
        }
    } c{s, pos};

    c.write("GGUF", 4);
    put<Counting, uint32_t>(c, kVersion);
    put<Counting, uint64_t>(c, tensors_.size());
    put<Counting, uint64_t>(c, metadata_.size());
    for (const KeyValue& kv : metadata_) {
        put_string(c, kv.key);
        put<Counting, uint32_t>(c, uint32_t(kv.value.type()));
        put_value(c, kv.value);
    }
    uint64_t offset = 0;
    for (const PendingTensor& t : tensors_) {
        put_string(c, t.name);
        put<Counting, uint32_t>(c, uint32_t(t.shape.size()));
        for (int64_t d : t.shape) put<Counting, uint64_t>(c, uint64_t(d));
        put<Counting, uint32_t>(c, uint32_t(t.type));
        put<Counting, uint64_t>(c, offset);
        offset = pad_to(offset + t.n_bytes, align);
    }
    put_zeros(c, pad_to(pos, align) - pos);
    // Each tensor is followed by zero padding to the alignment, the last one included,
    // as ggml's own writer does.
    for (const PendingTensor& t : tensors_) {
        if (t.produce) {
            const std::vector<uint8_t> bytes = t.produce();
            check(bytes.size() == t.n_bytes,
                  "GgufWriter: tensor '" + t.name + "': produced " + std::to_string(bytes.size()) +
                      " bytes, shape needs " + std::to_string(t.n_bytes));
            c.write(bytes.data(), bytes.size());
        } else {
            c.write(t.data.data(), t.data.size());
        }
        put_zeros(c, pad_to(t.n_bytes, align) - t.n_bytes);
    }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
    std::vector<uint8_t> out;
    VectorSink sink{out};
    serialize(sink);
    return out;
}

void GgufWriter::write(const std::filesystem::path& path) const {
    const std::string name = path.string();
    const std::string tmp = name + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(tmp + ": cannot create: " + std::strerror(errno));
    try {
        FileSink sink{f, tmp};
        serialize(sink);
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    if (std::fclose(f) != 0) {
        std::remove(tmp.c_str());
        throw Error(tmp + ": write failed: " + std::strerror(errno));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw Error(name + ": cannot rename from " + tmp + ": " + ec.message());
    }
}

}  // namespace lcx::gguf
