#include "runtime/text_stream.h"

#include <algorithm>

namespace lcx {

size_t incomplete_utf8_tail(std::string_view s) {
    // Walk back over at most 3 continuation bytes to the lead byte, then compare the
    // sequence length the lead byte announces with what is there.
    for (size_t back = 1; back <= std::min<size_t>(4, s.size()); ++back) {
        const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        size_t need = 1;
        if ((c & 0xE0) == 0xC0)
            need = 2;
        else if ((c & 0xF0) == 0xE0)
            need = 3;
        else if ((c & 0xF8) == 0xF0)
            need = 4;
        return need > back ? back : 0;
    }
    return 0;
}

std::string TextStream::push(std::string_view piece) {
    if (stopped_) return "";
    const size_t search_from = text_.size();
    text_.append(piece);
    for (const auto& stop : stops_) {
        if (stop.empty()) continue;
        // A stop string may straddle the previous text and this piece.
        const size_t from = search_from >= stop.size() ? search_from - stop.size() + 1 : 0;
        const size_t at = text_.find(stop, from);
        if (at != std::string::npos) {
            text_.resize(at);
            stopped_ = true;
        }
    }
    if (stopped_) return flush();

    size_t safe = text_.size() - incomplete_utf8_tail(text_);
    // Hold back the longest tail that is a prefix of some stop string.
    for (const auto& stop : stops_) {
        for (size_t len = std::min(stop.size() - 1, text_.size()); len > 0; --len) {
            if (text_.compare(text_.size() - len, len, stop, 0, len) == 0) {
                safe = std::min(safe, text_.size() - len);
                break;
            }
        }
    }
    if (safe <= shown_) return "";
    std::string out = text_.substr(shown_, safe - shown_);
    shown_ = safe;
    return out;
}

std::string TextStream::flush() {
    std::string out = shown_ < text_.size() ? text_.substr(shown_) : "";
    shown_ = text_.size();
    return out;
}

}  // namespace lcx
