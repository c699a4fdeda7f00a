// The scalar attention reference and the work splitting of attention_run().
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/attention.h"
#include "common/fp16.h"
#include "quant/quant.h"

namespace lcx::cpu {

namespace {

// Dot of a query (already in the cache's precision) with cache row `kr`.
float kv_dot(DType t, const float* q, const int8_t* q8, const float* q8d, const uint8_t* kr,
             int64_t hd) {
    float sum = 0;
    switch (t) {
        case DType::F32: {
            const float* k = reinterpret_cast<const float*>(kr);
            for (int64_t i = 0; i < hd; ++i) sum += q[i] * k[i];
            break;
        }
        case DType::F16: {
            const uint16_t* k = reinterpret_cast<const uint16_t*>(kr);
            for (int64_t i = 0; i < hd; ++i) sum += q[i] * fp16_to_fp32(k[i]);
            break;
        }
        default: {  // Q8_0: integer dot per block, like ggml's q8_0 x q8_0
            const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(kr);
            for (int64_t ib = 0; ib < hd / 32; ++ib) {
                int s = 0;
                for (int j = 0; j < 32; ++j) s += int(b[ib].qs[j]) * int(q8[ib * 32 + j]);
                sum += float(s) * fp16_to_fp32(b[ib].d) * q8d[ib];
            }
            break;
        }
    }
    return sum;
}

}  // namespace

void attention_ref_rows(const AttnArgs& a, int64_t i0, int64_t i1) {
    const int64_t hd = a.hd, nh = a.n_head, n_kv = a.n_kv, group = a.n_head / a.n_head_kv;
    const AttentionParams& p = a.p;
    const DType kt = a.kt, vt = a.vt;
    // Grow-only per-thread scratch: no allocation once warm.
    thread_local std::vector<float> scratch;
    thread_local std::vector<int8_t> q8;
    const size_t need = size_t(n_kv + 3 * hd + hd / 32 + 1);
    if (scratch.size() < need) scratch.resize(need);
    if (q8.size() < size_t(hd)) q8.resize(size_t(hd));
    float* logits = scratch.data();
    float* qbuf = logits + n_kv;
    float* acc = qbuf + hd;
    float* vrow = acc + hd;
    float* q8d = vrow + hd;
    for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = i / nh, h = i % nh, hk = h / group;
        const float* qr = a.q + (t * nh + h) * hd;
        // The query in the precision ggml's K·Q product uses for this cache type.
        if (kt == DType::F16) {
            for (int64_t j = 0; j < hd; ++j) qbuf[j] = fp16_to_fp32(fp32_to_fp16(qr[j]));
        } else if (kt == DType::Q8_0) {
            BlockQ8_0 blk;
            for (int64_t b = 0; b < hd / 32; ++b) {
                quantize_row_q8_0(qr + b * 32, &blk, 32);
                std::memcpy(q8.data() + b * 32, blk.qs, 32);
                q8d[b] = fp16_to_fp32(blk.d);
            }
        } else {
            std::memcpy(qbuf, qr, size_t(hd) * 4);
        }
        const int32_t pos = a.positions[t];
        float mx = -INFINITY;
        for (int64_t c = 0; c < n_kv; ++c) {
            if (!a.visible(pos, a.cell_pos(c))) {
                logits[c] = -INFINITY;
                continue;
            }
            float s = kv_dot(kt, qbuf, q8.data(), q8d, a.k_row(hk, c), hd) * p.scale;
            if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
            logits[c] = s;
            mx = std::max(mx, s);
        }
        double sum = 0;
        for (int64_t c = 0; c < n_kv; ++c) {
            const float e = logits[c] == -INFINITY ? 0.0f : std::exp(logits[c] - mx);
            logits[c] = e;
            sum += e;
        }
        const float inv = sum > 0 ? float(1.0 / sum) : 0.0f;
        std::fill(acc, acc + hd, 0.0f);
        for (int64_t c = 0; c < n_kv; ++c) {
            if (logits[c] == 0.0f) continue;
            float wgt = logits[c] * inv;
            // ggml multiplies the f16 V by the probabilities rounded to f16.
            if (vt == DType::F16) wgt = fp16_to_fp32(fp32_to_fp16(wgt));
            const uint8_t* vr = a.v_row(hk, c);
            if (vt == DType::F32) {
                const float* vf = reinterpret_cast<const float*>(vr);
                for (int64_t j = 0; j < hd; ++j) acc[j] += wgt * vf[j];
            } else if (vt == DType::F16) {
                const uint16_t* vh = reinterpret_cast<const uint16_t*>(vr);
                for (int64_t j = 0; j < hd; ++j) acc[j] += wgt * fp16_to_fp32(vh[j]);
            } else {
                dequantize_row(vt, vr, vrow, hd);
                for (int64_t j = 0; j < hd; ++j) acc[j] += wgt * vrow[j];
            }
        }
        std::memcpy(a.out + (t * nh + h) * hd, acc, size_t(hd) * 4);
    }
}

#if !defined(__x86_64__) && !defined(_M_X64)
AttnBlockFn attention_block(const AttnArgs&, CpuPath) { return nullptr; }
#endif

void attention_run(const AttnArgs& a, CpuPath path, ThreadPool& pool) {
    const int nth = pool.size();
    const bool small = nth == 1 || a.n_tokens * a.n_head * a.n_kv * a.hd < 16384;
    const AttnBlockFn fn = attention_block(a, path);
    if (!fn) {
        const int64_t total = a.n_tokens * a.n_head;
        if (small) {
            attention_ref_rows(a, 0, total);
            return;
        }
        pool.run(
            [&](int ith, int n) { attention_ref_rows(a, total * ith / n, total * (ith + 1) / n); });
        return;
    }
    // Items: (token block, KV head, slice of its query heads). Token blocks of 8 share
    // each converted K/V tile among 8 tokens × the group's heads; the heads are split
    // further only when there are too few items to keep every thread busy (decode).
    constexpr int64_t kTokBlock = 8;
    const int64_t group = a.n_head / a.n_head_kv;
    const int64_t n_tb = (a.n_tokens + kTokBlock - 1) / kTokBlock;
    const int64_t base = n_tb * a.n_head_kv;
    int64_t split = 1;
    if (!small)
        while (split < group && base * split < 2 * nth) {
            ++split;
            while (group % split) ++split;
        }
    const int64_t hs = group / split;
    const int64_t n_items = base * split;
    // Later token blocks see more of a causal cache: hand them out first.
    auto run_item = [&](int64_t i) {
        const int64_t tb = n_tb - 1 - i / (a.n_head_kv * split);
        const int64_t r = i % (a.n_head_kv * split);
        const int64_t hk = r / split, s = r % split;
        const int64_t h0 = hk * group + s * hs;
        fn(a, hk, h0, h0 + hs, tb * kTokBlock, std::min(a.n_tokens, (tb + 1) * kTokBlock));
    };
    if (small) {
        for (int64_t i = 0; i < n_items; ++i) run_item(i);
        return;
    }
    std::atomic<int64_t> next{0};
    pool.run([&](int, int) {
        for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) run_item(i);
    });
}

}  // namespace lcx::cpu
