#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace lcx::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::mutex g_mutex;

void emit(Level lvl, const char* tag, const char* fmt, va_list args) {
    if (lvl < g_level.load(std::memory_order_relaxed)) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fputs(tag, stderr);
    std::vfprintf(stderr, fmt, args);
    std::fputc('\n', stderr);
}

}  // namespace

void set_level(Level lvl) { g_level.store(lvl); }
Level level() { return g_level.load(); }

#define LCX_LOG_FN(name, lvl, tag)  \
    void name(const char* fmt, ...) { \
        va_list args;                 \
        va_start(args, fmt);          \
        emit(lvl, tag, fmt, args);    \
        va_end(args);                 \
    }
LCX_LOG_FN(debug, Level::Debug, "debug: ")
LCX_LOG_FN(info, Level::Info, "")
LCX_LOG_FN(warn, Level::Warn, "warning: ")
LCX_LOG_FN(error, Level::Error, "error: ")
#undef LCX_LOG_FN

}  // namespace lcx::log
