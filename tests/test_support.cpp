#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

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

RunResult run_binary(const std::string& args) {
    static std::atomic<int> counter{0};
    const auto err_path =
        std::filesystem::temp_directory_path() / ("lcx_test_stderr_" + std::to_string(::getpid()) +
                                                  "_" + std::to_string(counter.fetch_add(1)));
    // stdout is read through the pipe; stderr goes to a file so that neither can fill up
    // and block the child while the other is being read.
    const std::string cmd = binary_path() + " " + args + " 2>" + err_path.string();
    RunResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[65536];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream in(err_path);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    std::error_code ec;
    std::filesystem::remove(err_path, ec);
    return r;
}

}  // namespace lcx::test
