#include "server/scheduler.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "common/log.h"
#include "runtime/embedding.h"

namespace lcx::server {

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop:
            return "stop";
        case FinishReason::Length:
            return "length";
        case FinishReason::Cancelled:
            return "cancelled";
        case FinishReason::Error:
            return "error";
    }
    return "?";
}

namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
}

TaskEvent text_event(std::string text) {
    TaskEvent e;
    e.text = std::move(text);
    return e;
}

}  // namespace

Scheduler::Scheduler(Context& ctx, const Vocab& vocab, const SchedulerParams& params)
    : ctx_(ctx), vocab_(vocab), params_(params) {
    check(params_.n_parallel >= 1, "--parallel must be at least 1");
    check(params_.n_ctx_slot >= 1, "the context per slot must be at least 1 token");
    check(params_.max_queue >= 0, "the queue size must not be negative");
    check(params_.n_ctx_slot * params_.n_parallel <= ctx_.n_ctx(),
          "the context holds " + std::to_string(ctx_.n_ctx()) + " tokens, not " +
              std::to_string(params_.n_parallel) + " slots of " +
              std::to_string(params_.n_ctx_slot));
    if (params_.prompt_chunk <= 0) params_.prompt_chunk = ctx_.n_batch();
    // Each slot's sequence gets cells of its own, so it stays one run of cells and a step
    // attends, per slot, only that slot's cells.
    ctx_.kv_cache().partition(params_.n_parallel, params_.n_ctx_slot);
    slots_.resize(size_t(params_.n_parallel));
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].id = int32_t(i);
    stats_.n_slots = params_.n_parallel;
    thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

bool Scheduler::submit(std::shared_ptr<Task> task) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || draining_) return false;
        const int32_t idle = params_.n_parallel - stats_.slots_busy;
        // Tasks that a free slot will take at the next step do not count as queued.
        if (int32_t(queue_.size()) >= params_.max_queue + std::max(idle, 0)) return false;
        queue_.push_back(std::move(task));
        stats_.queue_depth = int32_t(queue_.size());
    }
    cv_.notify_all();
    return true;
}

bool Scheduler::submit(std::shared_ptr<EmbeddingTask> task) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || draining_) return false;
        if (int32_t(embed_queue_.size()) >= std::max(params_.max_queue, 1)) return false;
        embed_queue_.push_back(std::move(task));
    }
    cv_.notify_all();
    return true;
}

void Scheduler::run_embedding(EmbeddingTask& task) {
    try {
        if (!embed_ctx_) {
            ContextParams cp;
            cp.n_ctx = params_.n_ctx_slot;
            cp.n_batch = ctx_.n_batch();
            cp.type_k = ctx_.kv_cache().type_k();
            cp.type_v = ctx_.kv_cache().type_v();
            cp.logits = false;
            embed_ctx_ = std::make_unique<Context>(ctx_.shared_model(), ctx_.backend(), cp);
        }
        std::vector<std::vector<float>> vectors;
        vectors.reserve(task.inputs().size());
        uint64_t n_tokens = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& tokens : task.inputs()) {
            vectors.push_back(mean_pooled_embedding(*embed_ctx_, tokens));
            n_tokens += tokens.size();
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        {
            std::lock_guard lock(mutex_);
            stats_.prompt_tokens += n_tokens;
            stats_.decode_seconds += seconds;
        }
        task.complete(std::move(vectors));
    } catch (const Error& e) {
        log::warn("embedding: %s", e.what());
        if (embed_ctx_) embed_ctx_->clear();
        task.complete({}, e.what(), 400);
    } catch (const std::exception& e) {
        log::error("embedding: %s", e.what());
        if (embed_ctx_) embed_ctx_->clear();
        task.complete({}, std::string("internal error: ") + e.what(), 500);
    }
}

void Scheduler::stop(std::chrono::milliseconds grace) {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    {
        std::lock_guard lock(mutex_);
        draining_ = true;
    }
    // Let running requests finish within the grace period; polled, since it happens once.
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(mutex_);
            if (stats_.slots_busy == 0 && queue_.empty() && embed_queue_.empty()) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

Scheduler::Slot* Scheduler::pick_slot(const std::vector<int32_t>& prompt) {
    Slot* best = nullptr;
    size_t best_len = 0;
    for (Slot& s : slots_) {
        if (s.state != SlotState::Idle) continue;
        const size_t len = common_prefix(s.history, prompt);
        // Longest shared prefix first; among equals the least recently used slot, so a
        // conversation's cache survives as long as possible.
        if (!best || len > best_len || (len == best_len && s.last_used < best->last_used)) {
            best = &s;
            best_len = len;
        }
    }
    return best;
}

void Scheduler::assign(Slot& slot, std::shared_ptr<Task> task) {
    const TaskParams& p = task->params();
    slot.task = std::move(task);
    slot.last_used = ++use_counter_;
    slot.n_generated = 0;
    slot.n_prompt = int64_t(p.prompt.size());
    slot.batch_index = -1;
    if (p.prompt.empty() || int64_t(p.prompt.size()) > params_.n_ctx_slot) {
        finish(slot, FinishReason::Error,
               "the prompt has " + std::to_string(p.prompt.size()) +
                   " tokens but a slot's context holds " + std::to_string(params_.n_ctx_slot));
        return;
    }
    // Keep the shared prefix in the cache; at least the last prompt token is evaluated
    // again because its logits give the first generated token.
    size_t keep = common_prefix(slot.history, p.prompt);
    if (keep == p.prompt.size()) --keep;
    ctx_.truncate(slot.id, int32_t(keep));
    slot.history.resize(keep);
    slot.pending = p.prompt;
    slot.pending_at = keep;
    slot.n_cached = int64_t(keep);
    {
        std::lock_guard lock(mutex_);
        stats_.cached_tokens += keep;
    }
    slot.sampler = std::make_unique<Sampler>(p.sampling);
    for (int32_t t : p.prompt) slot.sampler->accept(t);
    slot.stream = std::make_unique<TextStream>(p.stop);
    slot.state = SlotState::Prompt;
}

void Scheduler::finish(Slot& slot, FinishReason reason, const std::string& error) {
    if (slot.stream && reason != FinishReason::Error) {
        std::string rest = slot.stream->flush();
        if (!rest.empty()) slot.task->push(text_event(std::move(rest)));
    }
    TaskEvent done;
    done.kind = TaskEvent::Kind::Done;
    done.finish = reason;
    done.prompt_tokens = slot.n_prompt;
    done.cached_tokens = slot.n_cached;
    done.completion_tokens = slot.n_generated;
    done.error = error;
    if (reason == FinishReason::Error) done.status = 400;
    if (reason == FinishReason::Cancelled) done.status = 503;
    if (slot.task) slot.task->push(std::move(done));
    slot.task.reset();
    slot.sampler.reset();
    slot.stream.reset();
    slot.pending.clear();
    slot.pending_at = 0;
    slot.state = SlotState::Idle;
    std::lock_guard lock(mutex_);
    ++stats_.tasks_done;
}

void Scheduler::on_logits(Slot& slot, std::span<const float> logits) {
    const int32_t token = slot.sampler->sample(logits);
    if (vocab_.is_eog(token)) {
        finish(slot, FinishReason::Stop);
        return;
    }
    slot.sampler->accept(token);
    ++slot.n_generated;
    std::string text = slot.stream->push(vocab_.token_to_piece(token, /*special=*/false));
    if (!text.empty()) slot.task->push(text_event(std::move(text)));
    const TaskParams& p = slot.task->params();
    if (slot.stream->stopped()) {
        finish(slot, FinishReason::Stop);
    } else if (p.n_predict >= 0 && slot.n_generated >= p.n_predict) {
        finish(slot, FinishReason::Length);
    } else if (int64_t(slot.history.size()) >= params_.n_ctx_slot) {
        // No room to evaluate the token just shown: the slot's context is full.
        finish(slot, FinishReason::Length);
    } else {
        slot.last_token = token;
        slot.state = SlotState::Generating;
    }
}

// Decodes batch_ entries [first, first + count). Each slot's tokens go to its own region
// of the cache, which its bounds (prompt and history at most n_ctx_slot) keep from
// overflowing; should a decode fail anyway, the range is split in halves until the
// failing slot is found, and only that one ends with the error.
void Scheduler::decode_range(size_t first, size_t count) {
    sub_batch_.clear();
    std::vector<size_t>& index = sub_index_;
    index.clear();
    for (size_t i = first; i < first + count; ++i) {
        const BatchEntry& e = batch_[i];
        if (slots_[size_t(e.seq)].state == SlotState::Idle) continue;  // failed earlier
        sub_batch_.add(e.token, e.pos, e.seq, e.want_logits);
        index.push_back(i);
    }
    if (sub_batch_.empty()) return;
    try {
        ctx_.decode(sub_batch_);
    } catch (const Error& e) {
        if (count > 1) {
            const size_t half = count / 2;
            decode_range(first, half);
            decode_range(first + half, count - half);
            return;
        }
        Slot& slot = slots_[size_t(batch_[first].seq)];
        log::warn("slot %d: %s", slot.id, e.what());
        finish(slot, FinishReason::Error, e.what());
        return;
    }
    for (size_t j = 0; j < index.size(); ++j) {
        const BatchEntry& e = batch_[index[j]];
        Slot& slot = slots_[size_t(e.seq)];
        slot.history.push_back(e.token);
        if (slot.state == SlotState::Prompt) ++slot.pending_at;
        if (e.want_logits) on_logits(slot, ctx_.logits(int32_t(j)));
    }
}

uint64_t Scheduler::total_generated() const {
    uint64_t n = 0;
    for (const Slot& s : slots_) n += uint64_t(s.n_generated);
    return n;
}

void Scheduler::run() {
    using clock = std::chrono::steady_clock;
    size_t prompt_turn = 0;  // which slot's prompt goes first, rotating for fairness
    for (;;) {
        std::vector<std::shared_ptr<Task>> dropped;
        {
            std::unique_lock lock(mutex_);
            auto active = [&] {
                return std::any_of(slots_.begin(), slots_.end(),
                                   [](const Slot& s) { return s.state != SlotState::Idle; });
            };
            cv_.wait(lock, [&] {
                return stopping_ || !queue_.empty() || !embed_queue_.empty() || active();
            });
            if (stopping_) break;
            if (!embed_queue_.empty()) {
                auto task = std::move(embed_queue_.front());
                embed_queue_.pop_front();
                lock.unlock();
                run_embedding(*task);
                lock.lock();
            }
            for (auto it = queue_.begin(); it != queue_.end();) {
                if ((*it)->cancelled()) {
                    dropped.push_back(std::move(*it));
                    it = queue_.erase(it);
                } else {
                    ++it;
                }
            }
            while (!queue_.empty()) {
                Slot* slot = pick_slot(queue_.front()->params().prompt);
                if (!slot) break;
                auto task = std::move(queue_.front());
                queue_.pop_front();
                lock.unlock();
                assign(*slot, std::move(task));
                lock.lock();
            }
            stats_.queue_depth = int32_t(queue_.size());
            stats_.slots_busy =
                int32_t(std::count_if(slots_.begin(), slots_.end(),
                                      [](const Slot& s) { return s.state != SlotState::Idle; }));
        }
        for (auto& t : dropped) {
            TaskEvent done;
            done.kind = TaskEvent::Kind::Done;
            done.finish = FinishReason::Cancelled;
            t->push(std::move(done));
        }

        const auto now = clock::now();
        for (Slot& s : slots_) {
            if (s.state == SlotState::Idle) continue;
            if (s.task->cancelled()) {
                finish(s, FinishReason::Cancelled, "the client went away");
            } else if (now > s.task->params().deadline) {
                finish(s, FinishReason::Cancelled, "the request timed out");
            }
        }

        // One batch: every generating slot's next token, then prompt chunks while the
        // batch has room.
        batch_.clear();
        for (Slot& s : slots_)
            if (s.state == SlotState::Generating)
                batch_.add(s.last_token, int32_t(s.history.size()), s.id, true);
        int64_t budget = ctx_.n_batch() - int64_t(batch_.size());
        uint64_t n_prompt_tokens = 0;
        for (size_t k = 0; k < slots_.size() && budget > 0; ++k) {
            Slot& s = slots_[(prompt_turn + k) % slots_.size()];
            if (s.state != SlotState::Prompt) continue;
            const int64_t left = int64_t(s.pending.size() - s.pending_at);
            const int64_t n = std::min({left, budget, params_.prompt_chunk});
            for (int64_t i = 0; i < n; ++i) {
                const size_t at = s.pending_at + size_t(i);
                batch_.add(s.pending[at], int32_t(s.history.size()) + int32_t(i), s.id,
                           i + 1 == left);
            }
            budget -= n;
            n_prompt_tokens += uint64_t(n);
        }
        prompt_turn = (prompt_turn + 1) % slots_.size();

        double seconds = 0.0;
        uint64_t n_generated = 0;
        if (!batch_.empty()) {
            // Generated tokens are counted by what this step sampled (a slot's count only
            // grows during a step; it is reset when the slot takes a new task).
            const uint64_t before = total_generated();
            const auto t0 = clock::now();
            decode_range(0, batch_.size());
            seconds = std::chrono::duration<double>(clock::now() - t0).count();
            n_generated = total_generated() - before;
        }
        std::lock_guard lock(mutex_);
        stats_.decode_seconds += seconds;
        stats_.decode_steps += batch_.empty() ? 0 : 1;
        stats_.prompt_tokens += n_prompt_tokens;
        stats_.generated_tokens += n_generated;
        stats_.slots_busy = int32_t(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) {
            return s.state != SlotState::Idle;
        }));
    }

    // Shutting down: end what is running and what waits.
    for (Slot& s : slots_)
        if (s.state != SlotState::Idle)
            finish(s, FinishReason::Cancelled, "the server is shutting down");
    std::deque<std::shared_ptr<Task>> rest;
    std::deque<std::shared_ptr<EmbeddingTask>> rest_embed;
    {
        std::lock_guard lock(mutex_);
        rest.swap(queue_);
        rest_embed.swap(embed_queue_);
        stats_.queue_depth = 0;
        stats_.slots_busy = 0;
    }
    for (auto& t : rest) {
        TaskEvent done;
        done.kind = TaskEvent::Kind::Done;
        done.finish = FinishReason::Cancelled;
        done.error = "the server is shutting down";
        done.status = 503;
        t->push(std::move(done));
    }
    for (auto& t : rest_embed) t->complete({}, "the server is shutting down", 503);
}

}  // namespace lcx::server
