#include "test_support.h"

#include <fstream>
#include <iterator>

namespace lcx::test {

std::optional<std::filesystem::path> find_data(const std::string& rel) {
    for (const char* root : {LCX_TEST_DATA, LCX_SHARED_DATA}) {
        std::filesystem::path p = std::filesystem::path(root) / rel;
        if (std::filesystem::exists(p)) return p;
    }
    return std::nullopt;
}

std::vector<uint8_t> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string binary_path() { return LCX_BINARY; }

}  // namespace lcx::test
