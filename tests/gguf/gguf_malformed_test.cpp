// Malformed files: a valid file from our writer, then one field corrupted. Each case
// must throw lcx::Error whose message names the problem (and where), never crash or
// read out of bounds (the sanitizer build checks the latter).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace lcx::gguf {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes base_file() {
    GgufWriter w;
    w.add("general.architecture", Value{std::string("llama")});
    w.add("key.aaa", Value{uint32_t(1)});
    w.add("key.bbb", Value{uint32_t(2)});
    Array arr{ValueType::INT32, {Value{int32_t(1)}, Value{int32_t(2)}, Value{int32_t(3)}}};
    w.add("key.arr", Value{arr});
    w.add("key.flag", Value{true});
    const Bytes a(32, 1), b(68, 2), c(16, 3);
    w.add_tensor("tensor.aaa", DType::F32, {4, 2}, a);
    w.add_tensor("tensor.bbb", DType::Q8_0, {32, 2}, b);
    w.add_tensor("tensor.ccc", DType::F16, {8}, c);
    return w.to_bytes();
}

// Offset of the first byte of a length-prefixed (u64) string `s` in the file.
size_t find_string(const Bytes& f, const std::string& s) {
    Bytes needle(8);
    const uint64_t n = s.size();
    std::memcpy(needle.data(), &n, 8);
    needle.insert(needle.end(), s.begin(), s.end());
    auto it = std::search(f.begin(), f.end(), needle.begin(), needle.end());
    EXPECT_NE(it, f.end()) << s;
    return size_t(it - f.begin()) + 8;
}

template <class T>
void poke(Bytes& f, size_t at, T x) {
    ASSERT_LE(at + sizeof(T), f.size());
    std::memcpy(f.data() + at, &x, sizeof(T));
}

// Offsets of tensor-info fields: name, n_dims (u32), dims (u64 each), type (u32), offset.
struct TensorFields {
    size_t n_dims, dims, type, offset;
};
TensorFields tensor_fields(const Bytes& f, const std::string& name, uint32_t n_dims) {
    const size_t p = find_string(f, name) + name.size();
    return {p, p + 4, p + 4 + 8 * n_dims, p + 8 + 8 * n_dims};
}

// Parses and returns the error message (empty if it parsed).
std::string error_of(const Bytes& f) {
    try {
        GgufFile::from_memory(f, true, "bad.gguf");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

void expect_error(const Bytes& f, std::initializer_list<const char*> parts) {
    const std::string msg = error_of(f);
    ASSERT_FALSE(msg.empty()) << "parsed without error";
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
    for (const char* part : parts)
        EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
}

// Each check must find the file's name and every given part in the message.
#define EXPECT_ERROR(bytes, ...)            \
    do {                                    \
        SCOPED_TRACE("EXPECT_ERROR");       \
        expect_error(bytes, {__VA_ARGS__}); \
    } while (0)

TEST(GgufMalformed, BaseFileIsValid) {
    const Bytes f = base_file();
    EXPECT_EQ(error_of(f), "");
    GgufFile g = GgufFile::from_memory(f);
    EXPECT_EQ(g.metadata().size(), 5u);
    EXPECT_EQ(g.tensors().size(), 3u);
}

TEST(GgufMalformed, BadMagic) {
    Bytes f = base_file();
    f[0] = 'X';
    EXPECT_ERROR(f, "magic", "XGUF", "offset 0");
}

TEST(GgufMalformed, UnknownVersion) {
    Bytes f = base_file();
    poke<uint32_t>(f, 4, 4);
    EXPECT_ERROR(f, "version 4");
    poke<uint32_t>(f, 4, 0);
    EXPECT_ERROR(f, "version 0");
}

TEST(GgufMalformed, BigEndian) {
    Bytes f = base_file();
    poke<uint32_t>(f, 4, 0x03000000);
    EXPECT_ERROR(f, "big-endian");
}

TEST(GgufMalformed, EveryTruncation) {
    // Cutting the file anywhere before the end of the last tensor's data must fail
    // cleanly: in the header, a key, an array, the tensor infos or the data. (The zero
    // padding after the last tensor is optional, so cutting it off is fine.)
    const Bytes f = base_file();
    GgufFile full = GgufFile::from_memory(f);
    const TensorInfo& last = full.tensors().back();
    const size_t end = size_t(full.data_offset() + last.offset + last.n_bytes);
    ASSERT_LT(end, f.size());
    EXPECT_EQ(error_of(Bytes(f.begin(), f.begin() + long(end))), "");
    for (size_t n = 0; n < end; ++n) {
        const Bytes cut(f.begin(), f.begin() + long(n));
        const std::string msg = error_of(cut);
        ASSERT_FALSE(msg.empty()) << "prefix of " << n << " bytes parsed";
        const bool named = msg.find("truncated") != std::string::npos ||
                           msg.find("outside the file") != std::string::npos ||
                           msg.find("bytes left") != std::string::npos ||
                           msg.find("cannot fit") != std::string::npos;
        EXPECT_TRUE(named) << n << ": " << msg;
    }
}

TEST(GgufMalformed, TruncationNamesKeyOrTensor) {
    const Bytes f = base_file();
    // Cut inside the u32 value of key.bbb (after the key and its type).
    const size_t in_u32 = find_string(f, "key.bbb") + 7 + 4 + 2;
    EXPECT_ERROR(Bytes(f.begin(), f.begin() + long(in_u32)), "truncated", "key 'key.bbb'",
                 "u32 value", ("offset " + std::to_string(in_u32 - 2)).c_str());
    // Cut inside the items of key.arr: refused from the count, naming the key.
    const size_t in_arr = find_string(f, "key.arr") + 7 + 4 + 4 + 8 + 6;
    EXPECT_ERROR(Bytes(f.begin(), f.begin() + long(in_arr)), "key 'key.arr'", "cannot fit");
    // Cut inside the dimensions of tensor.bbb.
    const size_t in_dims = tensor_fields(f, "tensor.bbb", 2).dims + 12;
    EXPECT_ERROR(Bytes(f.begin(), f.begin() + long(in_dims)), "truncated", "tensor 'tensor.bbb'");
}

TEST(GgufMalformed, CountsLargerThanFile) {
    Bytes f = base_file();
    poke<uint64_t>(f, 8, uint64_t(1) << 60);  // tensor count
    EXPECT_ERROR(f, "tensor count 1152921504606846976", "offset 8");
    f = base_file();
    poke<uint64_t>(f, 16, ~uint64_t(0));  // metadata count
    EXPECT_ERROR(f, "metadata count", "offset 16");
}

TEST(GgufMalformed, StringLengthLargerThanFile) {
    Bytes f = base_file();
    const size_t key = find_string(f, "key.bbb");
    poke<uint64_t>(f, key - 8, uint64_t(1) << 62);
    EXPECT_ERROR(f, "string length 4611686018427387904",
                 ("offset " + std::to_string(key - 8)).c_str());
}

TEST(GgufMalformed, HugeArrayCountRejectedBeforeAllocating) {
    // 2^61 i32 would be 8 EiB: must be refused from the remaining size, not by bad_alloc.
    Bytes f = base_file();
    const size_t key = find_string(f, "key.arr");
    poke<uint64_t>(f, key + 7 + 4 + 4, uint64_t(1) << 61);  // key, type, elem type
    EXPECT_ERROR(f, "key.arr", "array of 2305843009213693952 i32", "cannot fit");
}

TEST(GgufMalformed, ArrayItemLimit) {
    // 2^25 + 1 one-byte items: the bytes are there, but holding them as Values would cost
    // ~1.3 GB, so the reader refuses before reading them.
    const uint64_t n = (uint64_t(1) << 25) + 1;
    Bytes f = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    auto u64 = [&](uint64_t x) { f.insert(f.end(), (uint8_t*)&x, (uint8_t*)&x + 8); };
    auto u32 = [&](uint32_t x) { f.insert(f.end(), (uint8_t*)&x, (uint8_t*)&x + 4); };
    u64(0);
    u64(1);
    u64(3);
    f.insert(f.end(), {'b', 'i', 'g'});
    u32(uint32_t(ValueType::ARRAY));
    u32(uint32_t(ValueType::UINT8));
    u64(n);
    f.resize(f.size() + n);
    EXPECT_ERROR(f, "key 'big'", "limit of 33554432 array items");
}

TEST(GgufMalformed, DuplicateKey) {
    Bytes f = base_file();
    const size_t key = find_string(f, "key.bbb");
    std::memcpy(f.data() + key, "key.aaa", 7);
    EXPECT_ERROR(f, "duplicate metadata key 'key.aaa'");
}

TEST(GgufMalformed, UnknownValueType) {
    Bytes f = base_file();
    poke<uint32_t>(f, find_string(f, "key.bbb") + 7, 13);
    EXPECT_ERROR(f, "key.bbb", "unknown value type 13");
}

TEST(GgufMalformed, BoolNotZeroOrOne) {
    Bytes f = base_file();
    poke<uint8_t>(f, find_string(f, "key.flag") + 8 + 4, 7);
    EXPECT_ERROR(f, "key.flag", "bool");
}

TEST(GgufMalformed, DuplicateTensorName) {
    Bytes f = base_file();
    const size_t name = find_string(f, "tensor.ccc");
    std::memcpy(f.data() + name, "tensor.aaa", 10);
    EXPECT_ERROR(f, "duplicate tensor name 'tensor.aaa'");
}

TEST(GgufMalformed, UnknownTensorType) {
    Bytes f = base_file();
    poke<uint32_t>(f, tensor_fields(f, "tensor.ccc", 1).type, 4);  // retired Q4_2
    EXPECT_ERROR(f, "tensor.ccc", "unknown type id 4");
    poke<uint32_t>(f, tensor_fields(f, "tensor.ccc", 1).type, 1000);
    EXPECT_ERROR(f, "tensor.ccc", "unknown type id 1000");
}

TEST(GgufMalformed, MoreThanFourDims) {
    Bytes f = base_file();
    poke<uint32_t>(f, tensor_fields(f, "tensor.aaa", 2).n_dims, 5);
    EXPECT_ERROR(f, "tensor.aaa", "5 dimensions");
}

TEST(GgufMalformed, ElementCountOverflows) {
    Bytes f = base_file();
    const auto t = tensor_fields(f, "tensor.aaa", 2);
    poke<uint64_t>(f, t.dims, uint64_t(1) << 40);
    poke<uint64_t>(f, t.dims + 8, uint64_t(1) << 40);
    EXPECT_ERROR(f, "tensor.aaa", "overflows");
}

TEST(GgufMalformed, ByteSizeOverflows) {
    // 2^62 F32 elements fit in int64 but their 2^64 bytes do not fit in uint64.
    Bytes f = base_file();
    const auto t = tensor_fields(f, "tensor.aaa", 2);
    poke<uint64_t>(f, t.dims, uint64_t(1) << 62);
    poke<uint64_t>(f, t.dims + 8, 1);
    EXPECT_ERROR(f, "tensor.aaa", "byte size", "overflows");
}

TEST(GgufMalformed, DimensionTooLarge) {
    Bytes f = base_file();
    poke<uint64_t>(f, tensor_fields(f, "tensor.aaa", 2).dims, ~uint64_t(0));
    EXPECT_ERROR(f, "tensor.aaa", "too large");
}

TEST(GgufMalformed, RowNotMultipleOfBlock) {
    Bytes f = base_file();
    const auto t = tensor_fields(f, "tensor.bbb", 2);
    poke<uint64_t>(f, t.dims, 16);
    poke<uint64_t>(f, t.dims + 8, 4);  // same element count, rows of 16
    EXPECT_ERROR(f, "tensor.bbb", "row length 16", "Q8_0", "block size 32");
}

TEST(GgufMalformed, MisalignedOffset) {
    Bytes f = base_file();
    const auto t = tensor_fields(f, "tensor.bbb", 2);
    uint64_t off;
    std::memcpy(&off, f.data() + t.offset, 8);
    poke<uint64_t>(f, t.offset, off + 4);
    EXPECT_ERROR(f, "tensor.bbb", "not a multiple of the alignment 32");
}

TEST(GgufMalformed, OffsetOutsideFile) {
    Bytes f = base_file();
    poke<uint64_t>(f, tensor_fields(f, "tensor.ccc", 1).offset, uint64_t(1) << 40);
    EXPECT_ERROR(f, "tensor.ccc", "outside the file");
    // Near the top of the range, where offset + size would wrap around.
    poke<uint64_t>(f, tensor_fields(f, "tensor.ccc", 1).offset, ~uint64_t(31));
    EXPECT_ERROR(f, "tensor.ccc", "outside the file");
}

TEST(GgufMalformed, TensorsOverlap) {
    Bytes f = base_file();
    poke<uint64_t>(f, tensor_fields(f, "tensor.bbb", 2).offset, 0);
    EXPECT_ERROR(f, "tensor.aaa", "tensor.bbb", "overlap");
}

TEST(GgufMalformed, AlignmentNotPowerOfTwo) {
    GgufWriter w;
    w.add("general.alignment", Value{uint32_t(64)});
    w.add_tensor("t", DType::F32, {4}, Bytes(16));
    Bytes f = w.to_bytes();
    const size_t key = find_string(f, "general.alignment");
    poke<uint32_t>(f, key + 17 + 4, 48);
    EXPECT_ERROR(f, "general.alignment 48", "power of two");
    poke<uint32_t>(f, key + 17 + 4, 0);
    EXPECT_ERROR(f, "general.alignment 0", "power of two");
    poke<uint32_t>(f, key + 17, uint32_t(ValueType::STRING));
    EXPECT_ERROR(f);  // now a string whose length runs past the file, or a wrong type
}

TEST(GgufMalformed, NestingTooDeep) {
    // Arrays of arrays of ... 100 levels: refused by depth, no stack exhaustion.
    Bytes f = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    auto u64 = [&](uint64_t x) { f.insert(f.end(), (uint8_t*)&x, (uint8_t*)&x + 8); };
    auto u32 = [&](uint32_t x) { f.insert(f.end(), (uint8_t*)&x, (uint8_t*)&x + 4); };
    u64(0);
    u64(1);
    u64(4);
    f.insert(f.end(), {'d', 'e', 'e', 'p'});
    u32(uint32_t(ValueType::ARRAY));
    for (int i = 0; i < 100; ++i) {
        u32(uint32_t(ValueType::ARRAY));
        u64(1);
    }
    EXPECT_ERROR(f, "deep", "nested");
}

TEST(GgufMalformed, EmptyAndTinyInputs) {
    EXPECT_ERROR(Bytes{}, "truncated");
    EXPECT_ERROR(Bytes({'G', 'G', 'U', 'F'}), "truncated");
}

TEST(GgufMalformed, WriterRefusesBadTensors) {
    GgufWriter w;
    EXPECT_THROW(w.add_tensor("q", DType::Q8_0, {16}, Bytes(17)), Error);  // row % 32
    EXPECT_THROW(w.add_tensor("f", DType::F32, {4}, Bytes(15)), Error);    // size mismatch
    EXPECT_THROW(w.add_tensor("d", DType::F32, {1, 1, 1, 1, 1}, Bytes(4)), Error);
    w.add_tensor("x", DType::F32, {1}, Bytes(4));
    EXPECT_THROW(w.add_tensor("x", DType::F32, {1}, Bytes(4)), Error);  // duplicate
    EXPECT_THROW(w.add("general.alignment", Value{uint32_t(3)}), Error);
    Array mixed{ValueType::INT32, {Value{int32_t(1)}, Value{1.0f}}};
    EXPECT_THROW(w.add("mixed", Value{mixed}), Error);
}

}  // namespace
}  // namespace lcx::gguf
