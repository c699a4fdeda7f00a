// Chat templates: turn a conversation into the prompt text a chat model was trained on.
// Like llama.cpp we carry no Jinja engine: the model's `tokenizer.chat_template` is only
// inspected to pick one of a few built-in formats, each written out by hand.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lcx {

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

enum class ChatFormat { Llama2, Llama3, ChatML, Mistral, Zephyr, Gemma, Phi3, Plain };

class ChatTemplate {
  public:
    explicit ChatTemplate(ChatFormat format) : format_(format) {}

    // Picks the format a Jinja template string most likely means (llama.cpp's
    // heuristics); Plain when nothing matches or the string is empty.
    static ChatTemplate detect(std::string_view jinja);
    // By name: llama2, llama3, chatml, mistral, zephyr, gemma, phi3, plain.
    // Throws lcx::Error naming the known ones for anything else.
    static ChatTemplate from_name(std::string_view name);
    static std::string known_names();

    ChatFormat format() const { return format_; }
    std::string_view name() const;

    // The whole conversation as prompt text; with `add_assistant` the text ends with
    // the header that makes the model answer as the assistant.
    std::string apply(const std::vector<ChatMessage>& messages, bool add_assistant) const;
    // Only what `messages.back()` (plus the assistant header) adds to the text of the
    // messages before it: what a chat loop feeds the model each turn, so the earlier
    // turns stay in the KV cache untouched.
    std::string apply_last(const std::vector<ChatMessage>& messages, bool add_assistant) const;

  private:
    ChatFormat format_;
};

}  // namespace lcx
