// Turns a stream of token pieces into text that is safe to show as it comes: holds back
// an incomplete UTF-8 sequence at the end, and any tail that could still grow into a
// stop string; cuts the text where a stop string appears.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lcx {

class TextStream {
  public:
    explicit TextStream(std::vector<std::string> stop_strings = {})
        : stops_(std::move(stop_strings)) {}

    // Adds a piece; returns the text that became safe to show.
    std::string push(std::string_view piece);
    // Everything still held back (at the end of generation).
    std::string flush();

    bool stopped() const { return stopped_; }
    // All text so far, cut before the stop string if one appeared.
    const std::string& text() const { return text_; }

  private:
    std::vector<std::string> stops_;
    std::string text_;
    size_t shown_ = 0;
    bool stopped_ = false;
};

// Bytes at the end of `s` that begin a UTF-8 sequence not yet complete (0..3).
size_t incomplete_utf8_tail(std::string_view s);

}  // namespace lcx
