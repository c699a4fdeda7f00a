#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace lcx {

Candidates Candidates::from_logits(std::span<const float> logits) {
    Candidates c;
    c.data.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) c.data[i] = {int32_t(i), logits[i], 0.0f};
    return c;
}

static void sort_desc(Candidates& c) {
    if (c.sorted) return;
    std::stable_sort(c.data.begin(), c.data.end(),
                     [](const TokenData& a, const TokenData& b) { return a.logit > b.logit; });
    c.sorted = true;
}

void softmax(Candidates& c) {
    if (c.data.empty()) return;
    sort_desc(c);
    // Subtracting the maximum keeps exp() in range.
    const float max_logit = c.data[0].logit;
    float sum = 0.0f;
    for (auto& t : c.data) {
        t.p = std::exp(t.logit - max_logit);
        sum += t.p;
    }
    for (auto& t : c.data) t.p /= sum;
}

void apply_penalties(Candidates& c, std::span<const int32_t> recent, float repeat, float frequency,
                     float presence) {
    if (recent.empty() || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f)) return;
    std::unordered_map<int32_t, int> count;
    for (int32_t t : recent) ++count[t];
    for (auto& t : c.data) {
        auto it = count.find(t.id);
        if (it == count.end()) continue;
        // Dividing a negative logit would raise its probability; multiply it instead.
        if (t.logit <= 0.0f)
            t.logit *= repeat;
        else
            t.logit /= repeat;
        t.logit -= float(it->second) * frequency + presence;
    }
    c.sorted = false;
}

void apply_top_k(Candidates& c, int32_t k) {
    if (k <= 0 || c.data.empty()) return;
    const size_t keep = std::min(size_t(k), c.data.size());
    if (!c.sorted) {
        // A total order (ties by id), so selecting the k best and sorting only them gives
        // what a partial sort gives, in a fraction of its time (it runs for every token).
        const auto before = [](const TokenData& a, const TokenData& b) {
            return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
        };
        const auto kth = c.data.begin() + ptrdiff_t(keep);
        std::nth_element(c.data.begin(), kth - 1, c.data.end(), before);
        std::sort(c.data.begin(), kth, before);
        c.sorted = true;
    }
    c.data.resize(keep);
}

void apply_typical_p(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.data.empty()) return;
    softmax(c);
    // Locally typical sampling (Meister et al.): keep the tokens whose surprise is closest
    // to the distribution's entropy until their mass exceeds p.
    float entropy = 0.0f;
    for (const auto& t : c.data)
        if (t.p > 0.0f) entropy -= t.p * std::log(t.p);
    std::vector<float> shifted(c.data.size());
    for (size_t i = 0; i < c.data.size(); ++i)
        shifted[i] = std::fabs(-std::log(c.data[i].p) - entropy);
    std::vector<size_t> order(c.data.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return shifted[a] < shifted[b]; });
    size_t last = order.size();
    float cum = 0.0f;
    for (size_t i = 0; i < order.size(); ++i) {
        cum += c.data[order[i]].p;
        if (cum > p && i + 1 >= min_keep) {
            last = i + 1;
            break;
        }
    }
    std::vector<TokenData> kept;
    kept.reserve(last);
    for (size_t i = 0; i < last; ++i) kept.push_back(c.data[order[i]]);
    c.data = std::move(kept);
    c.sorted = false;
}

void apply_top_p(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.data.empty()) return;
    softmax(c);
    size_t last = c.data.size();
    float cum = 0.0f;
    for (size_t i = 0; i < c.data.size(); ++i) {
        cum += c.data[i].p;
        if (cum >= p && i + 1 >= min_keep) {
            last = i + 1;
            break;
        }
    }
    c.data.resize(last);
}

void apply_min_p(Candidates& c, float p, size_t min_keep) {
    if (p <= 0.0f || c.data.empty()) return;
    sort_desc(c);
    // p relative to the best token's probability is a cut in logit space: log(p) below the max.
    const float min_logit = c.data[0].logit + std::log(p);
    size_t i = 1;
    for (; i < c.data.size(); ++i)
        if (c.data[i].logit < min_logit && i >= min_keep) break;
    c.data.resize(i);
}

void apply_temperature(Candidates& c, float temp) {
    if (c.data.empty()) return;
    if (temp <= 0.0f) {
        // Greedy: the best logit survives, everything else becomes impossible.
        size_t best = 0;
        for (size_t i = 1; i < c.data.size(); ++i)
            if (c.data[i].logit > c.data[best].logit) best = i;
        for (size_t i = 0; i < c.data.size(); ++i)
            if (i != best) c.data[i].logit = -std::numeric_limits<float>::infinity();
        return;
    }
    for (auto& t : c.data) t.logit /= temp;
}

int32_t sample_dist(Candidates& c, std::mt19937& rng) {
    softmax(c);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const double r = uniform(rng);
    double cum = 0.0;
    for (const auto& t : c.data) {
        cum += t.p;
        if (r < cum) return t.id;
    }
    return c.data.back().id;  // rounding left r just above the total
}

int32_t argmax(std::span<const float> logits) {
    size_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
    return int32_t(best);
}

Sampler::Sampler(const SamplerParams& params) : params_(params) {
    seed_ = params.seed == kRandomSeed ? std::random_device{}() : params.seed;
    rng_.seed(uint32_t(seed_));
}

void Sampler::reset() {
    recent_.clear();
    rng_.seed(uint32_t(seed_));
}

void Sampler::accept(int32_t token) {
    if (params_.penalty_last_n == 0) return;
    recent_.push_back(token);
    if (params_.penalty_last_n > 0 && recent_.size() > size_t(params_.penalty_last_n))
        recent_.pop_front();
}

int32_t Sampler::sample(std::span<const float> logits) {
    const auto& p = params_;
    const bool penalize =
        !(p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f);
    if (p.temperature <= 0.0f && !penalize) return argmax(logits);

    Candidates c = Candidates::from_logits(logits);
    if (penalize) {
        recent_scratch_.assign(recent_.begin(), recent_.end());
        apply_penalties(c, recent_scratch_, p.repeat_penalty, p.frequency_penalty,
                        p.presence_penalty);
    }
    if (p.temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < c.data.size(); ++i)
            if (c.data[i].logit > c.data[best].logit) best = i;
        return c.data[best].id;
    }
    apply_top_k(c, p.top_k);
    apply_typical_p(c, p.typical_p, p.min_keep);
    apply_top_p(c, p.top_p, p.min_keep);
    apply_min_p(c, p.min_p, p.min_keep);
    apply_temperature(c, p.temperature);
    return sample_dist(c, rng_);
}

}  // namespace lcx
