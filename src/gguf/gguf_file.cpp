#include "gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "common/error.h"

namespace lcx::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxVersion = 3;
constexpr int kMaxDims = 4;
// Nested arrays are legal but nothing real nests deeply; a bound keeps a crafted file
// from exhausting the stack through recursion.
constexpr int kMaxArrayDepth = 8;
// Each array item becomes a Value of ~40 bytes, so a file of N bytes of u8 items could
// cost 40N of memory. Real files hold well under a million items (LLaMA 3: 128k tokens,
// 280k merges); this cap bounds the worst case at about 1.3 GB.
constexpr uint64_t kMaxArrayItems = uint64_t(1) << 25;

uint32_t bswap32(uint32_t x) { return __builtin_bswap32(x); }

// Owner of the bytes: an mmap, a heap copy, or nothing (caller-owned memory).
struct Bytes {
    const uint8_t* data = nullptr;
    size_t size = 0;
    void* map = nullptr;   // munmap on destruction
    void* heap = nullptr;  // free on destruction
    Bytes() = default;
    Bytes(const Bytes&) = delete;
    Bytes& operator=(const Bytes&) = delete;
    ~Bytes() {
        if (map) munmap(map, size);
        if (heap) std::free(heap);
    }
};

// Everything parsed from a file; GgufFile::State adds nothing but gives it the name the
// header declares, so the parser (in an anonymous namespace) can fill it.
struct Parsed {
    std::string path;
    std::shared_ptr<const Bytes> bytes;
    uint32_t version = 0;
    uint64_t alignment = kDefaultAlignment;
    uint64_t data_offset = 0;
    std::vector<KeyValue> metadata;
    std::unordered_map<std::string, size_t> key_index;
    std::vector<TensorInfo> tensors;
    std::unordered_map<std::string, size_t> tensor_index;
};

}  // namespace

int64_t TensorInfo::n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

struct GgufFile::State : Parsed {};

namespace {

// Reads little-endian fields with bounds checks; every failure names the offset.
class Reader {
  public:
    Reader(const uint8_t* data, size_t size, std::string name)
        : data_(data), size_(size), name_(std::move(name)) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }
    void set_v1(bool v1) { v1_ = v1; }
    bool v1() const { return v1_; }

    // What is being read ("key 'x'", "tensor 'y'"), named in every message, also from the
    // low-level reads that do not know it themselves.
    void set_context(std::string context) { context_ = std::move(context); }

    [[noreturn]] void fail(size_t at, const std::string& what) const {
        const std::string ctx = context_.empty() ? "" : context_ + ": ";
        throw Error(name_ + ": " + ctx + what + " (at byte offset " + std::to_string(at) + ")");
    }

    void need(size_t n, const char* what) const {
        if (n > remaining())
            fail(pos_, std::string("file truncated: ") + what + " needs " + std::to_string(n) +
                           " bytes, only " + std::to_string(remaining()) + " left");
    }

    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T x;
        std::memcpy(&x, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return x;
    }

    // Counts and string lengths are 32-bit in GGUF v1, 64-bit from v2 on.
    uint64_t read_count(const char* what) {
        return v1_ ? uint64_t(read<uint32_t>(what)) : read<uint64_t>(what);
    }
    size_t count_bytes() const { return v1_ ? 4 : 8; }

    std::string read_string(const char* what) {
        const size_t at = pos_;
        const uint64_t len = read_count(what);
        if (len > remaining())
            fail(at, std::string(what) + ": string length " + std::to_string(len) +
                         " exceeds the " + std::to_string(remaining()) + " bytes left in the file");
        std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
        pos_ += size_t(len);
        return s;
    }

    // Minimum encoded size of one value of type `t`: used to reject absurd array counts
    // before allocating anything for them.
    size_t min_size(ValueType t) const {
        switch (t) {
            case ValueType::UINT8:
            case ValueType::INT8:
            case ValueType::BOOL:
                return 1;
            case ValueType::UINT16:
            case ValueType::INT16:
                return 2;
            case ValueType::UINT32:
            case ValueType::INT32:
            case ValueType::FLOAT32:
                return 4;
            case ValueType::UINT64:
            case ValueType::INT64:
            case ValueType::FLOAT64:
                return 8;
            case ValueType::STRING:
                return count_bytes();
            case ValueType::ARRAY:
                return 4 + count_bytes();
        }
        return 1;
    }

    ValueType read_type() {
        const size_t at = pos_;
        const uint32_t t = read<uint32_t>("value type");
        if (t > uint32_t(ValueType::FLOAT64)) fail(at, "unknown value type " + std::to_string(t));
        return ValueType(t);
    }

    Value read_value(ValueType t, int depth) {
        switch (t) {
            case ValueType::UINT8:
                return Value{read<uint8_t>("u8 value")};
            case ValueType::INT8:
                return Value{read<int8_t>("i8 value")};
            case ValueType::UINT16:
                return Value{read<uint16_t>("u16 value")};
            case ValueType::INT16:
                return Value{read<int16_t>("i16 value")};
            case ValueType::UINT32:
                return Value{read<uint32_t>("u32 value")};
            case ValueType::INT32:
                return Value{read<int32_t>("i32 value")};
            case ValueType::FLOAT32:
                return Value{read<float>("f32 value")};
            case ValueType::BOOL: {
                const size_t at = pos_;
                const uint8_t b = read<uint8_t>("bool value");
                if (b > 1) fail(at, "bool value " + std::to_string(b) + " is neither 0 nor 1");
                return Value{b != 0};
            }
            case ValueType::STRING:
                return Value{read_string("string value")};
            case ValueType::UINT64:
                return Value{read<uint64_t>("u64 value")};
            case ValueType::INT64:
                return Value{read<int64_t>("i64 value")};
            case ValueType::FLOAT64:
                return Value{read<double>("f64 value")};
            case ValueType::ARRAY: {
                const size_t at = pos_;
                if (depth >= kMaxArrayDepth)
                    fail(at, "arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
                Array arr;
                arr.elem_type = read_type();
                const size_t count_at = pos_;
                const uint64_t n = read_count("array length");
                const size_t min = min_size(arr.elem_type);
                if (n > remaining() / min)
                    fail(count_at, "array of " + std::to_string(n) + " " +
                                       std::string(value_type_name(arr.elem_type)) +
                                       " cannot fit in the " + std::to_string(remaining()) +
                                       " bytes left in the file");
                if (n > kMaxArrayItems - total_items_)
                    fail(count_at, "array of " + std::to_string(n) +
                                       " items brings the metadata past the limit of " +
                                       std::to_string(kMaxArrayItems) + " array items");
                total_items_ += n;
                arr.items.reserve(size_t(n));
                for (uint64_t i = 0; i < n; ++i)
                    arr.items.push_back(read_value(arr.elem_type, depth + 1));
                return Value{std::move(arr)};
            }
        }
        fail(pos_, "unknown value type");
    }

    void align(uint64_t alignment) {
        const uint64_t padded = (uint64_t(pos_) + alignment - 1) / alignment * alignment;
        if (padded > size_) {
            // A file with no tensor data may end before the padding; nothing follows.
            pos_ = size_;
            return;
        }
        pos_ = size_t(padded);
    }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
    bool v1_ = false;
    uint64_t total_items_ = 0;  // array items read so far, against kMaxArrayItems
    std::string name_;
    std::string context_;
};

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

void parse(Parsed& st, const uint8_t* data, size_t size) {
    Reader r(data, size, st.path);

    const uint32_t magic = r.read<uint32_t>("magic");
    if (magic != kMagic) {
        char m[5] = {};
        std::memcpy(m, &magic, 4);
        for (int i = 0; i < 4; ++i)
            if (m[i] < 0x20 || m[i] > 0x7e) m[i] = '?';
        r.fail(0, std::string("not a GGUF file: magic is '") + m + "', expected 'GGUF'");
    }
    const uint32_t version = r.read<uint32_t>("version");
    if (version == 0 || version > kMaxVersion) {
        if (bswap32(version) >= 1 && bswap32(version) <= kMaxVersion)
            r.fail(4, "big-endian GGUF file (version " + std::to_string(bswap32(version)) +
                          " byte-swapped); only little-endian files are supported");
        r.fail(4, "unsupported GGUF version " + std::to_string(version) +
                      " (this reader handles versions 1 to 3)");
    }
    st.version = version;
    r.set_v1(version == 1);

    const size_t n_tensors_at = r.pos();
    const uint64_t n_tensors = r.read_count("tensor count");
    const size_t n_kv_at = r.pos();
    const uint64_t n_kv = r.read_count("metadata count");
    // Smallest possible entries: key length + type + 1-byte value; name length + n_dims +
    // type + offset. Larger counts cannot fit, so reject them before reserving memory.
    if (n_kv > r.remaining() / (r.count_bytes() + 4 + 1))
        r.fail(n_kv_at, "metadata count " + std::to_string(n_kv) + " cannot fit in a file of " +
                            std::to_string(size) + " bytes");
    if (n_tensors > r.remaining() / (r.count_bytes() + 4 + 4 + 8))
        r.fail(n_tensors_at, "tensor count " + std::to_string(n_tensors) +
                                 " cannot fit in a file of " + std::to_string(size) + " bytes");

    st.metadata.reserve(size_t(n_kv));
    size_t alignment_at = 0;
    for (uint64_t i = 0; i < n_kv; ++i) {
        const size_t at = r.pos();
        r.set_context("metadata entry " + std::to_string(i));
        std::string key = r.read_string("metadata key");
        r.set_context("");
        if (st.key_index.count(key)) r.fail(at, "duplicate metadata key '" + key + "'");
        r.set_context("key '" + key + "'");
        if (key == "general.alignment") alignment_at = at;
        const ValueType t = r.read_type();
        Value v = r.read_value(t, 0);
        st.key_index.emplace(key, st.metadata.size());
        st.metadata.push_back(KeyValue{std::move(key), std::move(v)});
    }
    r.set_context("");

    if (auto it = st.key_index.find("general.alignment"); it != st.key_index.end()) {
        const Value& v = st.metadata[it->second].value;
        const auto a = v.as_uint();
        if (!v.is_integer() || !a)
            r.fail(alignment_at, "general.alignment must be an unsigned integer, found " +
                                     std::string(value_type_name(v.type())));
        if (*a == 0 || (*a & (*a - 1)) != 0)
            r.fail(alignment_at,
                   "general.alignment " + std::to_string(*a) + " is not a nonzero power of two");
        // Alignments above 1 GiB are no use to anyone and make padding arithmetic risky.
        if (*a > (uint64_t(1) << 30))
            r.fail(alignment_at,
                   "general.alignment " + std::to_string(*a) + " is unreasonably large");
        st.alignment = *a;
    }

    st.tensors.reserve(size_t(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const size_t at = r.pos();
        TensorInfo ti;
        r.set_context("tensor info " + std::to_string(i));
        ti.name = r.read_string("tensor name");
        r.set_context("");
        if (st.tensor_index.count(ti.name)) r.fail(at, "duplicate tensor name '" + ti.name + "'");
        r.set_context("tensor '" + ti.name + "'");
        const size_t dims_at = r.pos();
        const uint32_t n_dims = r.read<uint32_t>("tensor dimension count");
        if (n_dims > uint32_t(kMaxDims))
            r.fail(dims_at,
                   "has " + std::to_string(n_dims) + " dimensions; at most 4 are supported");
        for (uint32_t d = 0; d < n_dims; ++d) {
            const size_t d_at = r.pos();
            // v1 stored dimensions as u32.
            const uint64_t ne = r.v1() ? uint64_t(r.read<uint32_t>("tensor dimension"))
                                       : r.read<uint64_t>("tensor dimension");
            if (ne > uint64_t(INT64_MAX))
                r.fail(d_at, "dimension " + std::to_string(d) + " is too large");
            ti.shape.push_back(int64_t(ne));
        }
        const size_t type_at = r.pos();
        const uint32_t type_id = r.read<uint32_t>("tensor type");
        const auto tr = dtype_traits(type_id);
        if (!tr) r.fail(type_at, "unknown type id " + std::to_string(type_id));
        ti.type = tr->type;
        const size_t off_at = r.pos();
        ti.offset = r.read<uint64_t>("tensor data offset");

        int64_t n = 1;
        for (int64_t d : ti.shape)
            if (__builtin_mul_overflow(n, d, &n))
                r.fail(dims_at, "element count of shape " + shape_string(ti.shape) + " overflows");
        const int64_t row = ti.shape.empty() ? 1 : ti.shape[0];
        if (row % tr->block_size != 0)
            r.fail(dims_at, "row length " + std::to_string(row) + " is not a multiple of the " +
                                std::string(tr->name) + " block size " +
                                std::to_string(tr->block_size) + " (shape " +
                                shape_string(ti.shape) + ")");
        uint64_t bytes = 0;
        if (__builtin_mul_overflow(uint64_t(n / tr->block_size), uint64_t(tr->block_bytes), &bytes))
            r.fail(dims_at, "byte size of shape " + shape_string(ti.shape) + " overflows");
        ti.n_bytes = bytes;
        if (ti.offset % st.alignment != 0)
            r.fail(off_at, "data offset " + std::to_string(ti.offset) +
                               " is not a multiple of the alignment " +
                               std::to_string(st.alignment));
        st.tensor_index.emplace(ti.name, st.tensors.size());
        st.tensors.push_back(std::move(ti));
    }
    r.set_context("");

    r.align(st.alignment);
    st.data_offset = r.pos();
    const uint64_t data_size = size - st.data_offset;

    for (const TensorInfo& ti : st.tensors) {
        if (ti.offset > data_size || ti.n_bytes > data_size - ti.offset)
            throw Error(st.path + ": tensor '" + ti.name + "': " + std::to_string(ti.n_bytes) +
                        " bytes of data at data offset " + std::to_string(ti.offset) +
                        " lie outside the file (" + std::to_string(data_size) +
                        " bytes of tensor data from byte offset " + std::to_string(st.data_offset) +
                        ")");
    }
    // Overlap check on tensors sorted by offset; empty tensors overlap nothing.
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(st.tensors.size());
    for (const TensorInfo& ti : st.tensors)
        if (ti.n_bytes > 0) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const TensorInfo* a = by_offset[i - 1];
        const TensorInfo* b = by_offset[i];
        if (a->offset + a->n_bytes > b->offset)
            throw Error(st.path + ": tensors '" + a->name + "' and '" + b->name +
                        "' overlap (data offsets " + std::to_string(a->offset) + "+" +
                        std::to_string(a->n_bytes) + " and " + std::to_string(b->offset) + ")");
    }
}

// Maps the file read-only at a 2 MiB-aligned address and advises huge pages. A file read
// for the first time then enters the page cache as 2 MiB folios (readahead allocates them
// for a mapping so advised), each mapped by one page-table entry: a 2 GiB model costs a
// thousand page faults instead of half a million (about 0.9 s on a VM), and decode takes
// fewer TLB misses. Pages already cached stay as they are. Falls back to a plain mapping.
void* map_huge_aligned(int fd, size_t size) {
    constexpr size_t kHuge = size_t(2) << 20;
    void* const any =
        mmap(nullptr, size + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (any == MAP_FAILED) return mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    auto* const base = static_cast<uint8_t*>(any);
    uint8_t* const start = base + (kHuge - reinterpret_cast<uintptr_t>(any) % kHuge) % kHuge;
    void* const p = mmap(start, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        const int e = errno;
        munmap(any, size + kHuge);
        errno = e;
        return MAP_FAILED;
    }
    // Give back the reservation's head and tail (the tail from the page after the file).
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    uint8_t* const end = start + (size + page - 1) / page * page;
    if (start > base) munmap(base, size_t(start - base));
    if (base + size + kHuge > end) munmap(end, size_t(base + size + kHuge - end));
    (void)madvise(p, size, MADV_HUGEPAGE);  // advice only
    return p;
}

std::shared_ptr<Bytes> map_file(const std::filesystem::path& path) {
    const std::string name = path.string();
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(name + ": cannot open: " + std::strerror(errno));
    struct stat sb {};
    if (fstat(fd, &sb) != 0) {
        const int e = errno;
        ::close(fd);
        throw Error(name + ": cannot stat: " + std::strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        ::close(fd);
        throw Error(name + ": not a regular file");
    }
    auto bytes = std::make_shared<Bytes>();
    bytes->size = size_t(sb.st_size);
    if (bytes->size == 0) {
        ::close(fd);
        throw Error(name + ": file is empty, not a GGUF file");
    }
    void* p = map_huge_aligned(fd, bytes->size);
    const int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw Error(name + ": cannot mmap: " + std::strerror(e));
    bytes->map = p;
    bytes->data = static_cast<const uint8_t*>(p);
    return bytes;
}

}  // namespace

void GgufFile::release_pages(const void* bytes, size_t n) const {
    if (!st().bytes || !st().bytes->map || n == 0) return;
    const Bytes& b = *st().bytes;
    const auto lo = reinterpret_cast<uintptr_t>(bytes), hi = lo + n;
    const auto base = reinterpret_cast<uintptr_t>(b.data);
    if (lo < base || hi > base + b.size) return;
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t first = (lo + page - 1) / page * page, last = hi / page * page;
    // Advice only: on failure the pages simply stay resident.
    if (first < last) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
    auto st = std::make_shared<State>();
    st->path = path.string();
    st->bytes = map_file(path);
    parse(*st, st->bytes->data, st->bytes->size);
    GgufFile f;
    f.state_ = std::move(st);
    return f;
}

GgufFile GgufFile::from_memory(std::span<const uint8_t> bytes, bool copy,
                               std::string display_name) {
    auto st = std::make_shared<State>();
    st->path = std::move(display_name);
    auto owner = std::make_shared<Bytes>();
    owner->size = bytes.size();
    if (copy) {
        // Page-aligned, so tensor views are as aligned as they would be in an mmap.
        const size_t alloc = (bytes.size() + 4095) / 4096 * 4096;
        void* p = std::aligned_alloc(4096, alloc == 0 ? 4096 : alloc);
        if (!p)
            throw Error(st->path + ": out of memory copying " + std::to_string(bytes.size()) +
                        " bytes");
        if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
        owner->heap = p;
        owner->data = static_cast<const uint8_t*>(p);
    } else {
        owner->data = bytes.data();
    }
    st->bytes = owner;
    parse(*st, owner->data, owner->size);
    GgufFile f;
    f.state_ = std::move(st);
    return f;
}

const GgufFile::State& GgufFile::st() const {
    // What a default-constructed GgufFile reports: an empty file, version 0.
    static const State kEmpty = [] {
        State s;
        s.bytes = std::make_shared<const Bytes>();
        return s;
    }();
    return state_ ? *state_ : kEmpty;
}

const std::string& GgufFile::path() const { return st().path; }
uint32_t GgufFile::version() const { return st().version; }
uint64_t GgufFile::alignment() const { return st().alignment; }
uint64_t GgufFile::file_size() const { return st().bytes->size; }
uint64_t GgufFile::data_offset() const { return st().data_offset; }
const std::vector<KeyValue>& GgufFile::metadata() const { return st().metadata; }
const std::vector<TensorInfo>& GgufFile::tensors() const { return st().tensors; }

const Value* GgufFile::find(std::string_view key) const {
    auto it = st().key_index.find(std::string(key));
    return it == st().key_index.end() ? nullptr : &st().metadata[it->second].value;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const Value& v,
                             const char* wanted) {
    throw Error(path + ": metadata key '" + std::string(key) + "' has type " +
                std::string(value_type_name(v.type())) + ", expected " + wanted);
}

}  // namespace

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (const std::string* s = v->as_string()) return *s;
    wrong_type(path(), key, *v, "a string");
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (auto x = v->as_int()) return x;
    if (v->is_integer())
        throw Error(path() + ": metadata key '" + std::string(key) +
                    "' is too large for a signed 64-bit integer");
    wrong_type(path(), key, *v, "an integer");
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (auto x = v->as_uint()) return x;
    if (v->is_integer())
        throw Error(path() + ": metadata key '" + std::string(key) + "' is negative");
    wrong_type(path(), key, *v, "an unsigned integer");
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (auto x = v->as_double()) return x;
    wrong_type(path(), key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (auto x = v->as_bool()) return x;
    wrong_type(path(), key, *v, "a bool");
}

const Array* GgufFile::get_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return nullptr;
    if (const Array* a = v->as_array()) return a;
    wrong_type(path(), key, *v, "an array");
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
    auto it = st().tensor_index.find(std::string(name));
    return it == st().tensor_index.end() ? nullptr : &st().tensors[it->second];
}

std::span<const uint8_t> GgufFile::tensor_bytes(const TensorInfo& info) const {
    // Offsets were checked against the file size when parsing.
    return {st().bytes->data + st().data_offset + info.offset, size_t(info.n_bytes)};
}

Tensor GgufFile::tensor(std::string_view name) const {
    const TensorInfo* info = find_tensor(name);
    if (!info) throw Error(path() + ": no tensor named '" + std::string(name) + "'");
    static const int64_t kScalar[1] = {1};
    std::span<const int64_t> shape = info->shape.empty() ? std::span<const int64_t>(kScalar)
                                                         : std::span<const int64_t>(info->shape);
    // The view holds the State, hence the mapping, for as long as it lives.
    Tensor t = Tensor::borrow(info->type, shape, tensor_bytes(*info).data(),
                              std::static_pointer_cast<const void>(state_));
    t.set_name(info->name);
    return t;
}

}  // namespace lcx::gguf
