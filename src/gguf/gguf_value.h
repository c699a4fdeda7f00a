// GGUF metadata values: the 13 value types of the format, arrays (possibly nested)
// included, held in file order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lcx::gguf {

enum class ValueType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};

std::string_view value_type_name(ValueType t);  // "u8", "i32", "f32", "str", "arr", ...

struct Value;

struct Array {
    ValueType elem_type = ValueType::UINT8;
    std::vector<Value> items;
};

struct Value {
    using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                                 std::string, Array, uint64_t, int64_t, double>;
    Storage v;

    ValueType type() const { return ValueType(v.index()); }
    bool is_string() const { return type() == ValueType::STRING; }
    bool is_array() const { return type() == ValueType::ARRAY; }
    bool is_integer() const;  // any of the 8 integer types (not bool)
    bool is_number() const;   // integer or float

    // Lossless conversions; nullopt when the value is not of a compatible kind or out
    // of range (e.g. a negative int32 read as u64).
    std::optional<int64_t> as_int() const;
    std::optional<uint64_t> as_uint() const;
    std::optional<double> as_double() const;  // integers and floats
    std::optional<bool> as_bool() const;
    const std::string* as_string() const;
    const Array* as_array() const;
};

struct KeyValue {
    std::string key;
    Value value;
};

}  // namespace lcx::gguf
