// Runs llama-cxx subcommands in-process (no child processes: fast on a 2-core CI box)
// and captures what they print to stdout.
#pragma once

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace lcx::test {

struct CliResult {
    std::string out;
    std::string error;  // what() of an exception, "" when none
};

// `add` registers the command; `args` excludes the program name. `stdin_text` replaces
// std::cin for the run.
inline CliResult run_cli(const std::function<void(CLI::App&)>& add, std::vector<std::string> args,
                         const std::string& stdin_text = "") {
    CLI::App app{"llama-cxx"};
    app.require_subcommand(1);
    add(app);
    std::vector<std::string> argv_store{"llama-cxx"};
    for (auto& a : args) argv_store.push_back(a);
    std::vector<char*> argv;
    for (auto& a : argv_store) argv.push_back(a.data());
    std::istringstream in(stdin_text);
    std::streambuf* old_cin = std::cin.rdbuf(in.rdbuf());
    CliResult r;
    testing::internal::CaptureStdout();
    try {
        app.parse(int(argv.size()), argv.data());
    } catch (const std::exception& e) {
        r.error = e.what();
        if (r.error.empty()) r.error = "exception";
    }
    std::fflush(stdout);
    r.out = testing::internal::GetCapturedStdout();
    std::cin.rdbuf(old_cin);
    return r;
}

}  // namespace lcx::test
