// A persistent thread pool: workers are created once and wait (spinning briefly, then
// sleeping) for the next job, so ops pay no thread-creation cost.
//
// A job is a list of parts; the caller and the workers claim parts from one atomic
// ticket, so the caller does its share and, when a worker is slow to wake (a loaded
// machine, a worker descheduled), takes over that worker's parts instead of waiting for
// it. run() returns when every part is done. The fast path takes no lock: a worker's
// condition variable is signalled only when it actually went to sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
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
    // Calls fn(i, size()) once for each i in [0, size()), concurrently, and waits for all
    // of them. Part i may run on any thread (the caller included), so fn must not assume
    // that i names the thread it runs on. Not reentrant: fn must not call run() on the
    // same pool.
    void run(const std::function<void(int, int)>& fn);
    // Calls fn(p) once for each part p in [0, n_parts), on the caller and the workers,
    // each thread claiming the next unclaimed part, and waits for all of them. More parts
    // than threads balance the load when some thread runs late.
    void run_parts(int n_parts, const std::function<void(int)>& fn);

  private:
    void worker();
    // Claims and runs parts of the job of generation `gen` until none is left.
    void work(uint32_t gen);

    int n_threads_;
    std::vector<std::thread> threads_;
    std::atomic<const std::function<void(int)>*> job_{nullptr};
    std::atomic<int> n_parts_{0};
    // Each on its own cache line. `ticket_` is (generation << 32) | next part to claim;
    // the workers poll it while waiting. `done_parts_` counts finished parts of the job.
    alignas(64) std::atomic<uint64_t> ticket_{0};
    alignas(64) std::atomic<int> done_parts_{0};
    alignas(64) std::atomic<int> sleepers_{0};
    std::atomic<bool> caller_sleeping_{false};
    std::atomic<bool> stop_{false};
    alignas(64) std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
};

}  // namespace lcx
