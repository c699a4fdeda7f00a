#include "test_support.h"

#include <fcntl.h>
#include <sys/resource.h>
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

PeakRun run_binary_peak(const std::vector<std::string>& args) {
    const std::string bin = binary_path();
    std::vector<std::string> owned{bin};
    owned.insert(owned.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : owned) argv.push_back(a.data());
    argv.push_back(nullptr);
    PeakRun r;
    const pid_t pid = ::fork();
    if (pid < 0) return r;
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec.
        const int null = ::open("/dev/null", O_WRONLY);
        if (null >= 0) {
            ::dup2(null, 1);
            ::dup2(null, 2);
        }
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    int st = 0;
    struct rusage ru {};
    if (::wait4(pid, &st, 0, &ru) != pid) return r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.max_rss_kib = ru.ru_maxrss;
    return r;
}

}  // namespace lcx::test
