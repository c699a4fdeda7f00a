// Byte-level BPE as llama.cpp runs it: pre-tokenize into words, map each word's bytes
// to GPT-2's printable characters, then within each word repeatedly merge the adjacent
// pair with the lowest merge rank (ties: leftmost). Words repeat a lot in real text, so
// each distinct word is encoded once per call.
#include <queue>

#include "vocab/unicode.h"
#include "vocab/vocab_impl.h"

namespace lcx {

namespace {

struct Symbol {
    int prev;
    int next;
    size_t start;
    size_t n;
};

struct Bigram {
    int left;
    int right;
    int rank;
    size_t left_n;
    size_t right_n;
};

struct BigramOrder {
    // priority_queue pops the "largest": lowest rank first, then the leftmost pair.
    bool operator()(const Bigram& l, const Bigram& r) const {
        return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    }
};

}  // namespace

void BpeSession::encode_word(const std::string& word, std::vector<int32_t>& out) {
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());

    if (v_.ignore_merges && v_.find(word) != Vocab::kNoToken) {
        symbols.push_back({-1, -1, 0, word.size()});
    } else {
        for (size_t offs = 0; offs < word.size();) {
            const size_t len = std::min(unicode::utf8_len(word[offs]), word.size() - offs);
            const int index = int(symbols.size());
            symbols.push_back({index - 1, offs + len == word.size() ? -1 : index + 1, offs, len});
            offs += len;
        }
    }

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    const std::string_view w = word;
    auto try_add = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        const Symbol& l = symbols[left];
        const Symbol& r = symbols[right];
        Vocab::Impl::merge_key(key_, w.substr(l.start, l.n), w.substr(r.start, r.n));
        const auto it = v_.bpe_ranks.find(std::string_view(key_));
        if (it == v_.bpe_ranks.end()) return;
        queue.push({left, right, it->second, l.n, r.n});
    };
    for (int i = 1; i < int(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = symbols[b.left];
        Symbol& r = symbols[b.right];
        // Stale: symbols only grow or vanish, so unchanged sizes mean unchanged texts.
        if (l.n == 0 || r.n == 0 || l.n != b.left_n || r.n != b.right_n) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }

    for (int i = 0; i != -1 && !symbols.empty(); i = symbols[i].next) {
        const Symbol& s = symbols[i];
        const std::string_view piece = w.substr(s.start, s.n);
        const int32_t id = v_.find(piece);
        if (id != Vocab::kNoToken) {
            out.push_back(id);
            continue;
        }
        // Not in the vocabulary: llama.cpp looks up each byte of the (encoded) piece on
        // its own and drops those that are not tokens either.
        for (const char c : piece) {
            const int32_t b = v_.find(std::string_view(&c, 1));
            if (b != Vocab::kNoToken) out.push_back(b);
        }
    }
}

void BpeSession::tokenize(std::string_view text, std::vector<int32_t>& out) {
    // Invalid UTF-8 becomes U+FFFD per bad byte before the regexes see it.
    const std::string clean = unicode::encode_utf8(unicode::decode_utf8(text));
    std::string encoded;
    for (const std::string_view word : v_.pre_tokenizer->split(clean)) {
        encoded.clear();
        for (const char c : word) encoded += unicode::byte_to_text(uint8_t(c));
        auto it = cache_.find(encoded);
        if (it == cache_.end()) {
            std::vector<int32_t> ids;
            encode_word(encoded, ids);
            it = cache_.emplace(encoded, std::move(ids)).first;
        }
        out.insert(out.end(), it->second.begin(), it->second.end());
    }
}

}  // namespace lcx
