#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "runtime/text_stream.h"

namespace lcx {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::EndOfGeneration:
            return "end of generation";
        case StopReason::Length:
            return "token limit";
        case StopReason::StopString:
            return "stop string";
        case StopReason::Interrupted:
            return "interrupted";
        case StopReason::ContextFull:
            return "context full";
    }
    return "?";
}

GenerateResult generate(Context& ctx, const Vocab& vocab, Sampler& sampler,
                        std::span<const int32_t> prompt, const GenerateOptions& opt,
                        const std::function<void(std::string_view)>& on_text) {
    GenerateResult r;
    r.n_prompt = int64_t(prompt.size());
    check(!prompt.empty(), "generate: the prompt has no tokens");
    int32_t pos = ctx.next_pos(opt.seq);

    auto t0 = std::chrono::steady_clock::now();
    if (!(int64_t(prompt.size()) <= ctx.kv_cache().n_free()))
        throw Error("the context is full: " + std::to_string(prompt.size()) +
                    " prompt tokens to evaluate but " + std::to_string(ctx.kv_cache().n_free()) +
                    " of " + std::to_string(ctx.n_ctx()) + " cells free (raise -c)");
    // The prompt goes in passes of n_batch tokens (as decode() would split it anyway), so
    // that progress can be shown and an interrupt honoured between them.
    Batch batch;
    const size_t step = size_t(std::max<int64_t>(ctx.n_batch(), 1));
    for (size_t first = 0; first < prompt.size(); first += step) {
        if (first > 0 && opt.interrupt && opt.interrupt->load()) {
            r.reason = StopReason::Interrupted;
            r.prompt_seconds = seconds_since(t0);
            return r;
        }
        const auto part = prompt.subspan(first, std::min(step, prompt.size() - first));
        batch.clear();
        batch.add_sequence(part, pos, opt.seq);
        ctx.decode(batch);
        pos += int32_t(part.size());
        r.evaluated.insert(r.evaluated.end(), part.begin(), part.end());
        if (opt.on_prompt_progress)
            opt.on_prompt_progress(int64_t(r.evaluated.size()), int64_t(prompt.size()));
    }
    for (int32_t t : prompt) sampler.accept(t);
    r.prompt_seconds = seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    TextStream stream(opt.stop);
    auto emit = [&](const std::string& s) {
        if (!s.empty() && on_text) on_text(s);
    };
    for (;;) {
        if (opt.interrupt && opt.interrupt->load()) {
            r.reason = StopReason::Interrupted;
            break;
        }
        if (opt.n_predict >= 0 && int64_t(r.tokens.size()) >= opt.n_predict) {
            r.reason = StopReason::Length;
            break;
        }
        const int32_t token = sampler.sample(ctx.logits(-1));
        if (vocab.is_eog(token)) {
            r.reason = StopReason::EndOfGeneration;
            break;
        }
        sampler.accept(token);
        r.tokens.push_back(token);
        emit(stream.push(vocab.token_to_piece(token, /*special=*/false)));
        if (stream.stopped()) {
            r.reason = StopReason::StopString;
            break;
        }
        const bool last = opt.n_predict >= 0 && int64_t(r.tokens.size()) >= opt.n_predict;
        if (last) continue;  // the loop head reports the limit; no need to evaluate it
        if (ctx.kv_cache().n_free() == 0) {
            r.reason = StopReason::ContextFull;
            break;
        }
        batch.clear();
        batch.add(token, pos++, opt.seq, true);
        ctx.decode(batch);
        r.evaluated.push_back(token);
    }
    emit(stream.flush());
    r.text = stream.text();
    r.gen_seconds = seconds_since(t0);
    return r;
}

std::string speed_summary(const GenerateResult& r) {
    auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "prompt: %lld tokens in %.3f s (%.1f t/s) | generation: %zu tokens in %.3f s "
                  "(%.1f t/s)",
                  static_cast<long long>(r.n_prompt), r.prompt_seconds,
                  rate(double(r.n_prompt), r.prompt_seconds), r.tokens.size(), r.gen_seconds,
                  rate(double(r.tokens.size()), r.gen_seconds));
    return buf;
}

}  // namespace lcx
