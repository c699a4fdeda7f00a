// Every GGUF file of the oracle set through reader -> writer -> reader: metadata (keys,
// types, values, order) and tensors (names, types, shapes, bytes) must survive exactly.
// Also: the small seed files in fuzz/corpus, written by an independent script from the
// specification, decode to the values the script put in them.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "common/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "test_support.h"

namespace lcx::gguf {
namespace {

namespace fs = std::filesystem;

// Exact equality; floats compared bit for bit so that NaNs and -0 round-trip too.
bool same_value(const Value& a, const Value& b) {
    if (a.type() != b.type()) return false;
    if (const Array* x = a.as_array()) {
        const Array* y = b.as_array();
        if (x->elem_type != y->elem_type || x->items.size() != y->items.size()) return false;
        for (size_t i = 0; i < x->items.size(); ++i)
            if (!same_value(x->items[i], y->items[i])) return false;
        return true;
    }
    if (a.type() == ValueType::FLOAT32) {
        float p = std::get<float>(a.v), q = std::get<float>(b.v);
        return std::memcmp(&p, &q, 4) == 0;
    }
    if (a.type() == ValueType::FLOAT64) {
        double p = std::get<double>(a.v), q = std::get<double>(b.v);
        return std::memcmp(&p, &q, 8) == 0;
    }
    return std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Array>) {
                return false;  // handled above
            } else {
                return x == std::get<T>(b.v);
            }
        },
        a.v);
}

std::vector<fs::path> all_gguf_files() {
    std::map<std::string, fs::path> by_rel;  // tests/data first, like find_data
    for (const char* root : {LCX_SHARED_DATA, LCX_TEST_DATA}) {
        if (!fs::is_directory(root)) continue;
        for (const auto& e : fs::recursive_directory_iterator(root))
            if (e.is_regular_file() && e.path().extension() == ".gguf")
                by_rel[fs::relative(e.path(), root).string()] = e.path();
    }
    std::vector<fs::path> out;
    for (auto& [rel, p] : by_rel) out.push_back(p);
    return out;
}

void expect_same(const GgufFile& a, const GgufFile& b) {
    ASSERT_EQ(a.metadata().size(), b.metadata().size());
    for (size_t i = 0; i < a.metadata().size(); ++i) {
        EXPECT_EQ(a.metadata()[i].key, b.metadata()[i].key);
        EXPECT_TRUE(same_value(a.metadata()[i].value, b.metadata()[i].value))
            << a.metadata()[i].key;
    }
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
        const TensorInfo& x = a.tensors()[i];
        const TensorInfo& y = b.tensors()[i];
        EXPECT_EQ(x.name, y.name);
        EXPECT_EQ(x.type, y.type) << x.name;
        EXPECT_EQ(x.shape, y.shape) << x.name;
        auto bx = a.tensor_bytes(x), by = b.tensor_bytes(y);
        ASSERT_EQ(bx.size(), by.size()) << x.name;
        EXPECT_EQ(std::memcmp(bx.data(), by.data(), bx.size()), 0) << x.name;
        EXPECT_EQ(y.offset % b.alignment(), 0u) << x.name;
    }
}

TEST(GgufRoundTrip, EveryOracleFile) {
    const auto files = all_gguf_files();
    if (files.empty()) GTEST_SKIP() << "no .gguf files in tests/data or ../shared/data";
    int n_checked = 0, n_refused = 0;
    for (const fs::path& path : files) {
        SCOPED_TRACE(path.string());
        GgufFile a = [&] {
            try {
                return GgufFile::open(path);
            } catch (const Error& e) {
                // Only the Q8_0 file with 172-long rows is known to be invalid.
                EXPECT_NE(path.filename().string().find("q8_0"), std::string::npos) << e.what();
                ++n_refused;
                return GgufFile();
            }
        }();
        if (a.version() == 0) continue;
        GgufWriter w;
        for (const KeyValue& kv : a.metadata()) w.add(kv.key, kv.value);
        for (const TensorInfo& t : a.tensors())
            w.add_tensor_view(t.name, t.type, t.shape, a.tensor_bytes(t));
        const std::vector<uint8_t> bytes = w.to_bytes();
        GgufFile b = GgufFile::from_memory(bytes);
        EXPECT_EQ(b.version(), 3u);
        EXPECT_EQ(b.alignment(), a.alignment());
        expect_same(a, b);
        ++n_checked;
    }
    EXPECT_GT(n_checked, 0);
    EXPECT_LE(n_refused, 1);
}

TEST(GgufRoundTrip, LlamaCppFilesRewriteByteForByte) {
    // llama-quantize (ggml's gguf writer) pads every tensor, the last included, to the
    // alignment, as our writer does; so re-writing its files must give the same bytes.
    // This checks our layout against an independent writer, not against ourselves.
    for (const char* rel : {"models/zoo/zoo-Q4_0.gguf", "models/stories260K-Q6_K.gguf"}) {
        auto path = test::find_data(rel);
        if (!path) continue;
        SCOPED_TRACE(rel);
        GgufFile a = GgufFile::open(*path);
        // Every tensor a view; then every other one made lazily, as quantize does.
        for (bool lazy : {false, true}) {
            GgufWriter w;
            for (const KeyValue& kv : a.metadata()) w.add(kv.key, kv.value);
            size_t i = 0;
            for (const TensorInfo& t : a.tensors()) {
                const auto bytes = a.tensor_bytes(t);
                if (lazy && i++ % 2 == 0)
                    w.add_tensor_lazy(t.name, t.type, t.shape, [bytes] {
                        return std::vector<uint8_t>(bytes.begin(), bytes.end());
                    });
                else
                    w.add_tensor_view(t.name, t.type, t.shape, bytes);
            }
            const std::vector<uint8_t> original = test::read_file(*path);
            const std::vector<uint8_t> rewritten = w.to_bytes();
            ASSERT_EQ(original.size(), rewritten.size()) << "lazy " << lazy;
            EXPECT_TRUE(original == rewritten) << "lazy " << lazy;
        }
    }
}

// A lazy tensor whose producer gives the wrong number of bytes fails the write, which
// leaves no file behind.
TEST(GgufRoundTrip, LazyTensorOfTheWrongSizeFailsTheWrite) {
    GgufWriter w;
    w.add("general.architecture", Value{std::string("llama")});
    w.add_tensor_lazy("x", DType::F32, {3, 2}, [] { return std::vector<uint8_t>(20); });
    EXPECT_THROW(w.to_bytes(), Error);
    const fs::path path = fs::temp_directory_path() / "lcx_gguf_lazy_test.gguf";
    EXPECT_THROW(w.write(path), Error);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
    EXPECT_THROW(
        w.add_tensor_lazy("y", DType::Q4_0, {20, 2}, [] { return std::vector<uint8_t>(); }),
        Error);  // the shape is checked up front
}

TEST(GgufRoundTrip, WriteToFile) {
    GgufWriter w;
    w.add("general.architecture", Value{std::string("llama")});
    w.add("general.alignment", Value{uint32_t(64)});
    const float data[6] = {1, 2, 3, 4, 5, 6};
    w.add_tensor("x", DType::F32, {3, 2},
                 std::span(reinterpret_cast<const uint8_t*>(data), sizeof(data)));
    const fs::path path = fs::temp_directory_path() / "lcx_gguf_write_test.gguf";
    w.write(path);
    GgufFile f = GgufFile::open(path);
    fs::remove(path);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    EXPECT_EQ(f.file_size() % 64, 0u);
    Tensor t = f.tensor("x");
    EXPECT_EQ(t.data_as<float>()[5], 6.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
}

// The seeds in fuzz/corpus are written by fuzz/make_seeds.py straight from the spec.
fs::path corpus_dir() {
    return fs::path(LCX_TEST_DATA).parent_path().parent_path() / "fuzz/corpus";
}

TEST(GgufSpecSeeds, AllValueTypesInEveryVersion) {
    for (int version = 1; version <= 3; ++version) {
        const fs::path path = corpus_dir() / ("v" + std::to_string(version) + "-all-types.gguf");
        if (!fs::exists(path)) GTEST_SKIP() << path << " missing";
        SCOPED_TRACE(path.string());
        GgufFile f = GgufFile::open(path);
        EXPECT_EQ(f.version(), uint32_t(version));
        EXPECT_EQ(std::get<uint8_t>(f.find("t.u8")->v), 200);
        EXPECT_EQ(std::get<int8_t>(f.find("t.i8")->v), -5);
        EXPECT_EQ(std::get<uint16_t>(f.find("t.u16")->v), 60000);
        EXPECT_EQ(std::get<int16_t>(f.find("t.i16")->v), -3000);
        EXPECT_EQ(std::get<uint32_t>(f.find("t.u32")->v), 4000000000u);
        EXPECT_EQ(std::get<int32_t>(f.find("t.i32")->v), -7);
        EXPECT_EQ(std::get<float>(f.find("t.f32")->v), 1e-5f);
        EXPECT_EQ(std::get<bool>(f.find("t.bool")->v), true);
        EXPECT_EQ(std::get<uint64_t>(f.find("t.u64")->v), uint64_t(1) << 40);
        EXPECT_EQ(std::get<int64_t>(f.find("t.i64")->v), -(int64_t(1) << 40));
        EXPECT_EQ(std::get<double>(f.find("t.f64")->v), 0.25);
        const Array* arr = f.get_array("t.arr");
        ASSERT_NE(arr, nullptr);
        ASSERT_EQ(arr->items.size(), 3u);
        EXPECT_EQ(*arr->items[1].as_string(), "bc");
        EXPECT_EQ(*arr->items[2].as_string(), "");
        const Array* nested = f.get_array("t.nested");
        ASSERT_NE(nested, nullptr);
        EXPECT_EQ(nested->elem_type, ValueType::ARRAY);
        ASSERT_EQ(nested->items.size(), 2u);
        EXPECT_EQ(nested->items[0].as_array()->items[1].as_int(), 2);
        EXPECT_EQ(nested->items[1].as_array()->elem_type, ValueType::FLOAT32);
        // getters convert losslessly
        EXPECT_EQ(f.get_int("t.i8"), -5);
        EXPECT_THROW(f.get_uint("t.i8"), Error);  // negative
        EXPECT_EQ(f.get_float("t.u16"), 60000.0);
        ASSERT_EQ(f.tensors().size(), 3u);
        EXPECT_EQ(f.find_tensor("b.weight")->type, DType::Q8_0);
        EXPECT_EQ(f.find_tensor("c.weight")->shape, (std::vector<int64_t>{3}));
        // the script fills tensor bytes with (i * 7 + 3) & 0xFF
        auto b = f.tensor_bytes(*f.find_tensor("b.weight"));
        ASSERT_EQ(b.size(), 34u);
        for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b[i], uint8_t((i * 7 + 3) & 0xFF));
    }
}

TEST(GgufSpecSeeds, CustomAlignment) {
    const fs::path path = corpus_dir() / "v3-align64.gguf";
    if (!fs::exists(path)) GTEST_SKIP() << path << " missing";
    GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    EXPECT_EQ(f.find_tensor("r.weight")->offset, 192u);  // 144 bytes of Q4_K padded to 64
}

}  // namespace
}  // namespace lcx::gguf
