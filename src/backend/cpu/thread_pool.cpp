#include "backend/cpu/thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LCX_PAUSE() _mm_pause()
#else
#define LCX_PAUSE() std::this_thread::yield()
#endif

namespace lcx {

namespace {
// Spin for this many polls before sleeping: long enough to cover the gap between two
// consecutive ops of a forward pass (a few microseconds), short enough not to burn a core
// while the model waits for input.
constexpr int kSpinPolls = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    threads_.reserve(size_t(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    job_ = &fn;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
        // Publishing under the mutex pairs with a sleeper's check-then-wait.
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1, std::memory_order_release);
        if (sleepers_ > 0) wake_.notify_all();
    }
    fn(0, n_threads_);
    int polls = 0;
    while (pending_.load(std::memory_order_acquire) != 0) {
        if (++polls < kSpinPolls) {
            LCX_PAUSE();
        } else {
            std::unique_lock<std::mutex> lock(mutex_);
            done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
        }
    }
    job_ = nullptr;
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        int polls = 0;
        uint64_t gen;
        while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
            if (++polls < kSpinPolls) {
                LCX_PAUSE();
                continue;
            }
            std::unique_lock<std::mutex> lock(mutex_);
            ++sleepers_;
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            --sleepers_;
        }
        seen = gen;
        if (stop_) return;
        (*job_)(index, n_threads_);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // The caller may be asleep: take the mutex so the notify cannot slip between
            // its predicate check and its wait.
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_one();
        }
    }
}

}  // namespace lcx
