// The scheduler: one thread owns the decode Context and runs every slot in it. Each
// step gathers the next token of every generating slot plus the next chunk of any
// prompt being read into one Batch over the multi-sequence KV cache (sequence id =
// slot, each owning a region of n_ctx_slot cells), decodes it once, then samples for
// each slot. A long prompt is read in chunks, so it delays the other streams by one
// chunk per step, not by its whole length.
//
// Each slot keeps the tokens its KV sequence holds; a new request goes to the free slot
// sharing the longest prefix with its prompt, and only the rest of the prompt is
// evaluated (a conversation's follow-up turn re-reads just the new messages).
//
// Embedding requests wait in a queue of their own; the thread evaluates one per step,
// before the step's batch, in a second context of one slot's size (created on first use)
// so that no slot's cache is disturbed. A long one delays the running streams by its
// evaluation time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/context.h"
#include "runtime/sampler.h"
#include "runtime/text_stream.h"
#include "server/task.h"
#include "vocab/vocab.h"

namespace lcx::server {

struct SchedulerParams {
    int32_t n_parallel = 1;
    int64_t n_ctx_slot = 0;    // cells each slot may use; the context holds n_parallel of these
    int32_t max_queue = 64;    // waiting requests beyond the busy slots
    int64_t prompt_chunk = 0;  // prompt tokens per slot per step (0: the context's n_batch)
};

struct SchedulerStats {
    int32_t n_slots = 0;
    int32_t slots_busy = 0;
    int32_t queue_depth = 0;
    uint64_t tasks_done = 0;
    uint64_t prompt_tokens = 0;  // prompt tokens evaluated (reused ones not counted)
    uint64_t cached_tokens = 0;  // prompt tokens reused from a slot's cache
    uint64_t generated_tokens = 0;
    uint64_t decode_steps = 0;
    double decode_seconds = 0.0;  // time spent in Context::decode
};

class Scheduler {
  public:
    Scheduler(Context& ctx, const Vocab& vocab, const SchedulerParams& params);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queues a task; false when the queue is full (or the scheduler is stopping).
    bool submit(std::shared_ptr<Task> task);
    // Queues an embedding request; false when its queue is full (or the scheduler is
    // stopping).
    bool submit(std::shared_ptr<EmbeddingTask> task);
    // Refuses new tasks, lets running and queued ones finish for up to `grace`, then ends
    // the rest (FinishReason::Cancelled) and joins the thread. Idempotent.
    void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

    SchedulerStats stats() const;
    const SchedulerParams& params() const { return params_; }

  private:
    enum class SlotState { Idle, Prompt, Generating };
    struct Slot {
        int32_t id = 0;
        SlotState state = SlotState::Idle;
        std::shared_ptr<Task> task;
        std::vector<int32_t> history;  // tokens the KV sequence holds, in order
        std::vector<int32_t> pending;  // prompt tokens still to evaluate
        size_t pending_at = 0;
        std::unique_ptr<Sampler> sampler;
        std::unique_ptr<TextStream> stream;
        int32_t last_token = -1;  // sampled, shown, not yet evaluated
        int64_t n_generated = 0;
        int64_t n_prompt = 0;
        int64_t n_cached = 0;
        uint64_t last_used = 0;
        int32_t batch_index = -1;  // entry of the current batch whose logits are this slot's
    };

    void run();
    void assign(Slot& slot, std::shared_ptr<Task> task);
    void finish(Slot& slot, FinishReason reason, const std::string& error = {});
    void on_logits(Slot& slot, std::span<const float> logits);
    void decode_range(size_t first, size_t count);
    uint64_t total_generated() const;  // sum of the slots' n_generated
    Slot* pick_slot(const std::vector<int32_t>& prompt);
    void run_embedding(EmbeddingTask& task);

    Context& ctx_;
    const Vocab& vocab_;
    SchedulerParams params_;
    std::vector<Slot> slots_;
    Batch batch_, sub_batch_;
    std::vector<size_t> sub_index_;    // sub_batch_ entry -> batch_ entry
    std::vector<int32_t> batch_slot_;  // batch entry -> slot id whose logits it carries, or -1
    uint64_t use_counter_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Task>> queue_;
    std::deque<std::shared_ptr<EmbeddingTask>> embed_queue_;
    std::unique_ptr<Context> embed_ctx_;  // the scheduler thread's, for embeddings
    bool stopping_ = false;
    bool draining_ = false;
    SchedulerStats stats_;  // guarded by mutex_
    std::thread thread_;
};

}  // namespace lcx::server
