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
// The same for a fixed message, which then becomes a string only on failure (checks in
// per-op paths must not allocate). A message built from parts is built before the call:
// there, write `if (!cond) throw Error(...)`.
inline void check(bool cond, const char* message) {
    if (!cond) throw Error(message);
}

}  // namespace lcx
