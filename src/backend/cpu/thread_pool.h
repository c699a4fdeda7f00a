// A persistent thread pool: workers are created once and wait (spinning briefly, then
// sleeping) for the next job, so ops pay no thread-creation cost. The calling thread
// runs part 0 of every job itself; run() returns when all parts are done.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lcx {

class ThreadPool {
  public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    // Calls fn(i, size()) for i in [0, size()), concurrently, and waits for all of them.
    // Not reentrant: fn must not call run() on the same pool.
    void run(const std::function<void(int, int)>& fn);

  private:
    void worker(int index);

    int n_threads_;
    std::vector<std::thread> threads_;
    const std::function<void(int, int)>* job_ = nullptr;
    // Each on its own cache line: the workers poll `generation_` while the caller's
    // decrements of `pending_` would otherwise invalidate that line on every finish.
    alignas(64) std::atomic<uint64_t> generation_{0};
    alignas(64) std::atomic<int> pending_{0};
    alignas(64) std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    bool stop_ = false;
    int sleepers_ = 0;
};

}  // namespace lcx
