// One generation request as the scheduler sees it: the prompt tokens and options going
// in, and a channel of events (text pieces, then one final event) coming out. The HTTP
// thread that owns the connection waits on the channel; the scheduler thread fills it.
// Either side may cancel: the client by disconnecting, the server by shutting down.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace lcx::server {

enum class FinishReason { Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);

struct TaskEvent {
    enum class Kind { Text, Done };
    Kind kind = Kind::Text;
    std::string text;  // Text: the new piece (complete UTF-8, stop strings cut)
    // Done:
    FinishReason finish = FinishReason::Stop;
    int64_t prompt_tokens = 0;
    int64_t cached_tokens = 0;  // prompt tokens reused from the slot's KV cache
    int64_t completion_tokens = 0;
    std::string error;  // Error / Cancelled: what went wrong, and the HTTP status it maps to
    int status = 500;
};

struct TaskParams {
    std::vector<int32_t> prompt;  // at least one token
    SamplerParams sampling;
    int32_t n_predict = -1;  // < 0: until end of generation or the slot's context is full
    std::vector<std::string> stop;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    // false: the consumer only needs the whole text (a response that is not streamed), so
    // text events are queued without waking it; no thread switch per generated token.
    bool stream = true;
};

class Task {
  public:
    explicit Task(TaskParams params) : params_(std::move(params)) {}

    const TaskParams& params() const { return params_; }

    // --- the scheduler's side ---
    void push(TaskEvent e) {
        const bool wake = params_.stream || e.kind == TaskEvent::Kind::Done;
        {
            std::lock_guard lock(mutex_);
            events_.push_back(std::move(e));
        }
        if (wake) cv_.notify_all();
    }
    bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

    // --- the HTTP side ---
    // Next event, or nothing after `timeout` (so the caller can check its connection).
    std::optional<TaskEvent> pop(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
        TaskEvent e = std::move(events_.front());
        events_.pop_front();
        return e;
    }
    void cancel() { cancelled_.store(true, std::memory_order_relaxed); }

  private:
    TaskParams params_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<TaskEvent> events_;
    std::atomic<bool> cancelled_{false};
};

// One /v1/embeddings request: token lists in, one pooled vector per list out. The
// scheduler thread evaluates it in a context of its own (no slot's cache is touched) and
// completes it once; the HTTP thread waits for that.
class EmbeddingTask {
  public:
    explicit EmbeddingTask(std::vector<std::vector<int32_t>> inputs) : inputs_(std::move(inputs)) {}

    const std::vector<std::vector<int32_t>>& inputs() const { return inputs_; }

    // --- the scheduler's side ---
    // Either vectors (one per input) or an error with the HTTP status it maps to.
    void complete(std::vector<std::vector<float>> vectors, std::string error = {},
                  int status = 200) {
        {
            std::lock_guard lock(mutex_);
            vectors_ = std::move(vectors);
            error_ = std::move(error);
            status_ = status;
            done_ = true;
        }
        cv_.notify_all();
    }

    // --- the HTTP side ---
    // True once complete() was called (then vectors(), error() and status() are final).
    bool wait(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return done_; });
    }
    const std::vector<std::vector<float>>& vectors() const { return vectors_; }
    const std::string& error() const { return error_; }
    int status() const { return status_; }

  private:
    std::vector<std::vector<int32_t>> inputs_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::vector<std::vector<float>> vectors_;
    std::string error_;
    int status_ = 200;
};

}  // namespace lcx::server
