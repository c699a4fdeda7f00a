#include "gguf/gguf_value.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace lcx::gguf {

std::string_view value_type_name(ValueType t) {
    switch (t) {
        case ValueType::UINT8:
            return "u8";
        case ValueType::INT8:
            return "i8";
        case ValueType::UINT16:
            return "u16";
        case ValueType::INT16:
            return "i16";
        case ValueType::UINT32:
            return "u32";
        case ValueType::INT32:
            return "i32";
        case ValueType::FLOAT32:
            return "f32";
        case ValueType::BOOL:
            return "bool";
        case ValueType::STRING:
            return "str";
        case ValueType::ARRAY:
            return "arr";
        case ValueType::UINT64:
            return "u64";
        case ValueType::INT64:
            return "i64";
        case ValueType::FLOAT64:
            return "f64";
    }
    return "?";
}

namespace {

template <class T>
constexpr bool kIsInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;

}  // namespace

bool Value::is_integer() const {
    return std::visit([](const auto& x) { return kIsInteger<std::decay_t<decltype(x)>>; }, v);
}

bool Value::is_number() const {
    return std::visit(
        [](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            return kIsInteger<T> || std::is_floating_point_v<T>;
        },
        v);
}

std::optional<int64_t> Value::as_int() const {
    return std::visit(
        [](const auto& x) -> std::optional<int64_t> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, uint64_t>) {
                if (x > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
                return int64_t(x);
            } else if constexpr (kIsInteger<T>) {
                return int64_t(x);
            } else {
                return std::nullopt;
            }
        },
        v);
}

std::optional<uint64_t> Value::as_uint() const {
    return std::visit(
        [](const auto& x) -> std::optional<uint64_t> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (kIsInteger<T>) {
                if constexpr (std::is_signed_v<T>) {
                    if (x < 0) return std::nullopt;
                }
                return uint64_t(x);
            } else {
                return std::nullopt;
            }
        },
        v);
}

std::optional<double> Value::as_double() const {
    return std::visit(
        [](const auto& x) -> std::optional<double> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (kIsInteger<T> || std::is_floating_point_v<T>) {
                return double(x);
            } else {
                return std::nullopt;
            }
        },
        v);
}

std::optional<bool> Value::as_bool() const {
    if (const bool* b = std::get_if<bool>(&v)) return *b;
    return std::nullopt;
}

const std::string* Value::as_string() const { return std::get_if<std::string>(&v); }

const Array* Value::as_array() const { return std::get_if<Array>(&v); }

}  // namespace lcx::gguf
