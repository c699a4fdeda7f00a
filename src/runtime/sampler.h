// Token sampling: llama.cpp's default sampler chain, one plain function per step, applied
// in llama.cpp's order: penalties → top-k → typical-p → top-p → min-p → temperature →
// seeded draw. Each step narrows or reshapes a list of candidates; `Sampler` strings them
// together and remembers the recent tokens the penalties look at.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace lcx {

struct TokenData {
    int32_t id;
    float logit;
    float p;  // probability; valid only after softmax()
};

// The candidate list that each step rewrites. `sorted` means descending by logit, which
// lets later steps skip re-sorting, as in llama.cpp.
struct Candidates {
    std::vector<TokenData> data;
    bool sorted = false;

    static Candidates from_logits(std::span<const float> logits);
};

// llama.cpp's defaults (common_params_sampling).
struct SamplerParams {
    float temperature = 0.8f;  // <= 0: greedy (argmax after penalties)
    int32_t top_k = 40;        // <= 0: off
    float top_p = 0.95f;       // >= 1: off
    float min_p = 0.05f;       // <= 0: off
    float typical_p = 1.0f;    // >= 1: off
    float repeat_penalty = 1.0f;
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    int32_t penalty_last_n = 64;  // 0: off, -1: the whole context (capped at n_ctx by caller)
    uint64_t seed = 0xFFFFFFFF;   // kRandomSeed: pick a random seed
    size_t min_keep = 1;
};

constexpr uint64_t kRandomSeed = 0xFFFFFFFF;

// --- the steps (each usable on its own; tests check them one by one) ------------------

// Sorts descending by logit (if not already) and fills p with the softmax.
void softmax(Candidates& c);
// Repetition penalty divides positive logits and multiplies negative ones by `repeat`
// (llama.cpp's CTRL-style rule), then subtracts count·frequency + presence for every
// token seen in `recent`.
void apply_penalties(Candidates& c, std::span<const int32_t> recent, float repeat, float frequency,
                     float presence);
void apply_top_k(Candidates& c, int32_t k);
void apply_typical_p(Candidates& c, float p, size_t min_keep = 1);
void apply_top_p(Candidates& c, float p, size_t min_keep = 1);
void apply_min_p(Candidates& c, float p, size_t min_keep = 1);
// Divides logits by `temp`; temp <= 0 keeps only the best token.
void apply_temperature(Candidates& c, float temp);
// Draws one token from the softmax of the candidates.
int32_t sample_dist(Candidates& c, std::mt19937& rng);
// Index of the highest logit (first one on ties, like llama.cpp's greedy sampler).
int32_t argmax(std::span<const float> logits);

// The chain. accept() records every token that enters the context (prompt tokens too,
// as llama.cpp does), so the penalties see the same window.
class Sampler {
  public:
    explicit Sampler(const SamplerParams& params);

    int32_t sample(std::span<const float> logits);
    void accept(int32_t token);
    void reset();

    const SamplerParams& params() const { return params_; }
    uint64_t seed() const { return seed_; }

  private:
    SamplerParams params_;
    uint64_t seed_;
    std::mt19937 rng_;
    std::deque<int32_t> recent_;
    std::vector<int32_t> recent_scratch_;
};

}  // namespace lcx
