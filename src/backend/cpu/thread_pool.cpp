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

constexpr uint32_t gen_of(uint64_t t) { return uint32_t(t >> 32); }
constexpr uint32_t part_of(uint64_t t) { return uint32_t(t); }
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    threads_.reserve(size_t(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ticket_.fetch_add(uint64_t(1) << 32);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

// Memory order: the ticket, the sleeper count and the caller's flag use sequentially
// consistent operations, so that a waiter's "announce, then re-check" and a publisher's
// "publish, then look for waiters" cannot both miss each other (the waiter then also
// checks under the mutex the publisher takes before notifying).
void ThreadPool::work(uint32_t gen) {
    for (;;) {
        uint64_t t = ticket_.load();
        const std::function<void(int)>* fn = job_.load();
        const int n = n_parts_.load();
        // A claim succeeds only while the ticket still names this job and the part is
        // unclaimed, so `fn` and `n` (published before the ticket) are this job's.
        if (gen_of(t) != gen || part_of(t) >= uint32_t(n)) return;
        if (!ticket_.compare_exchange_weak(t, t + 1)) continue;
        (*fn)(int(part_of(t)));
        if (done_parts_.fetch_add(1) + 1 == n && caller_sleeping_.load()) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_one();
        }
    }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    const int n = n_threads_;
    run_parts(n, [&](int i) { fn(i, n); });
}

void ThreadPool::run_parts(int n_parts, const std::function<void(int)>& fn) {
    if (n_parts <= 0) return;
    if (n_threads_ == 1 || n_parts == 1) {
        for (int p = 0; p < n_parts; ++p) fn(p);
        return;
    }
    // Close the finished job's ticket before publishing the new job: a worker that read the
    // old ticket (all parts claimed) and then reads the new part count must not be able to
    // claim "part n_old" of the new job with a compare-exchange on the old ticket.
    const uint64_t old = ticket_.load();
    ticket_.store(old | 0xFFFFFFFFu);
    job_.store(&fn);
    n_parts_.store(n_parts);
    done_parts_.store(0);
    // New generation, part 0.
    const uint32_t gen = gen_of(old) + 1;
    ticket_.store(uint64_t(gen) << 32);
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        wake_.notify_all();
    }
    work(gen);
    int polls = 0;
    while (done_parts_.load() != n_parts) {
        if (++polls < kSpinPolls) {
            LCX_PAUSE();
            continue;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        caller_sleeping_.store(true);
        while (done_parts_.load() != n_parts) done_.wait(lock);
        caller_sleeping_.store(false);
    }
}

void ThreadPool::worker() {
    // Generation 0 is the one the pool was built with: a job (or the destructor) that
    // comes before this thread starts is still seen as new.
    uint32_t seen = 0;
    for (;;) {
        int polls = 0;
        uint32_t gen;
        while ((gen = gen_of(ticket_.load())) == seen) {
            if (++polls < kSpinPolls) {
                LCX_PAUSE();
                continue;
            }
            std::unique_lock<std::mutex> lock(mutex_);
            sleepers_.fetch_add(1);
            while (gen_of(ticket_.load()) == seen) wake_.wait(lock);
            sleepers_.fetch_sub(1);
        }
        seen = gen;
        if (stop_.load()) return;
        work(gen);
    }
}

}  // namespace lcx
