// Error type for everything that can go wrong because of user input: files, flags,
// requests. It carries a message that already names what failed and where.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace lcx {

class Error : public std::runtime_error {
  public:
    explicit Error(std::string what) : std::runtime_error(std::move(what)) {}
};

// Throws lcx::Error when `cond` is false. For checks on untrusted input only;
// internal invariants use assert().
inline void check(bool cond, const std::string& message) {
    if (!cond) throw Error(message);
}

}  // namespace lcx
