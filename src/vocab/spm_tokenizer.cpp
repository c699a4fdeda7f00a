// SentencePiece-style BPE as llama.cpp runs it: start from single UTF-8 characters,
// repeatedly merge the adjacent pair whose concatenation is the vocabulary token with
// the highest score (ties: leftmost), then emit each final piece as its token, or as
// byte tokens when the piece is not in the vocabulary.
//
// The caller has already added the leading space and escaped spaces to U+2581.
#include <queue>

#include "vocab/unicode.h"
#include "vocab/vocab_impl.h"

namespace lcx {

namespace {

struct Symbol {
    int prev;
    int next;
    size_t start;  // byte offset into the text
    size_t n;      // bytes; 0 once merged into the left neighbour
};

struct Bigram {
    int left;
    int right;
    float score;
    size_t size;
};

struct BigramOrder {
    // priority_queue pops the "largest": highest score first, then the leftmost pair.
    bool operator()(const Bigram& l, const Bigram& r) const {
        return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
};

}  // namespace

void spm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out) {
    std::vector<Symbol> symbols;
    symbols.reserve(text.size());
    for (size_t offs = 0; offs < text.size();) {
        // Split by the lead byte only, without validation, as llama.cpp does: invalid
        // bytes end up as byte tokens.
        const size_t len = std::min(unicode::utf8_len(text[offs]), text.size() - offs);
        const int index = int(symbols.size());
        symbols.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, offs, len});
        offs += len;
    }
    if (symbols.empty()) return;

    std::vector<Bigram> storage;
    storage.reserve(symbols.size());
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue(BigramOrder{},
                                                                        std::move(storage));
    auto try_add = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        const size_t size = symbols[left].n + symbols[right].n;
        const int32_t id = v.find(text.substr(symbols[left].start, size));
        if (id == Vocab::kNoToken) return;
        queue.push({left, right, v.tokens[id].score, size});
    };

    for (int i = 1; i < int(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = symbols[b.left];
        Symbol& r = symbols[b.right];
        // Stale entry: one side has been merged since it was queued.
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }

    // Every merged piece is a vocabulary token by construction; single characters that
    // are not fall back to their bytes (llama.cpp's "resegment").
    for (int i = 0; i != -1; i = symbols[i].next) {
        const Symbol& s = symbols[i];
        const std::string_view piece = text.substr(s.start, s.n);
        const int32_t id = v.find(piece);
        if (id != Vocab::kNoToken) {
            out.push_back(id);
            continue;
        }
        for (const char c : piece) {
            const int32_t b = v.byte_to_token(uint8_t(c));
            if (b != Vocab::kNoToken) {
                out.push_back(b);
            } else if (v.unk != Vocab::kNoToken) {
                out.push_back(v.unk);
            }
        }
    }
}

void spm_tokenize_words(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out,
                        std::unordered_map<std::string, std::vector<int32_t>>& cache) {
    if (!v.spm_words_independent) {
        spm_tokenize(v, text, out);
        return;
    }
    // Cut before each U+2581 that follows another character: no token spans such a
    // cut, so no merge crosses it and each word merges exactly as in the whole text.
    constexpr std::string_view kSpace = "\xE2\x96\x81";
    size_t start = 0;
    auto flush = [&](size_t end) {
        if (end == start) return;
        const std::string word(text.substr(start, end - start));
        auto it = cache.find(word);
        if (it == cache.end()) {
            std::vector<int32_t> ids;
            spm_tokenize(v, word, ids);
            it = cache.emplace(word, std::move(ids)).first;
        }
        out.insert(out.end(), it->second.begin(), it->second.end());
        start = end;
    };
    // Walk the same lead-byte segmentation spm_tokenize uses, so a cut never falls
    // inside one of its symbols (invalid UTF-8 included).
    bool prev_is_space = false;
    for (size_t pos = 0; pos < text.size();) {
        const size_t len = std::min(unicode::utf8_len(text[pos]), text.size() - pos);
        const bool is_space = text.substr(pos, len) == kSpace;
        if (is_space && !prev_is_space && pos > 0) flush(pos);
        prev_is_space = is_space;
        pos += len;
    }
    flush(text.size());
}

}  // namespace lcx
