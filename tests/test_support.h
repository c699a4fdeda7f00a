// Helpers shared by every test binary: where the oracle data lives, and skipping (with
// the reason printed) when a file exists only in ../shared.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lcx::test {

// tests/data/<rel> if it exists there, else ../shared/data/<rel> if that exists.
std::optional<std::filesystem::path> find_data(const std::string& rel);
std::vector<uint8_t> read_file(const std::filesystem::path& path);
// Path to the built llama-cxx binary.
std::string binary_path();

// Runs the built llama-cxx with `args` (a shell fragment: quoting and redirections work)
// and collects its exit status (-1 if it did not exit normally), stdout and stderr.
struct RunResult {
    int status = -1;
    std::string out;
    std::string err;
};
RunResult run_binary(const std::string& args);

// Runs the built llama-cxx with these arguments (no shell, output discarded) and returns
// its exit status (-1 if it did not exit normally) and its peak resident set in KiB, from
// the rusage of that one child.
struct PeakRun {
    int status = -1;
    long max_rss_kib = 0;
};
PeakRun run_binary_peak(const std::vector<std::string>& args);

}  // namespace lcx::test

// Resolves `rel` into `var` or skips the current test, printing why.
#define LCX_REQUIRE_DATA(var, rel)                                                             \
    auto var##_opt = ::lcx::test::find_data(rel);                                              \
    if (!var##_opt)                                                                            \
        GTEST_SKIP() << "test data " << (rel) << " not found in tests/data or ../shared/data"; \
    const std::filesystem::path var = *var##_opt
