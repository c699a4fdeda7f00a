#include "runtime/chat_template.h"

#include <array>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace lcx {

namespace {

constexpr std::array<std::pair<std::string_view, ChatFormat>, 8> kNames{{
    {"llama2", ChatFormat::Llama2},
    {"llama3", ChatFormat::Llama3},
    {"chatml", ChatFormat::ChatML},
    {"mistral", ChatFormat::Mistral},
    {"zephyr", ChatFormat::Zephyr},
    {"gemma", ChatFormat::Gemma},
    {"phi3", ChatFormat::Phi3},
    {"plain", ChatFormat::Plain},
}};

std::string trim(std::string_view s) {
    const char* ws = " \t\n\r";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return "";
    const size_t e = s.find_last_not_of(ws);
    return std::string(s.substr(b, e - b + 1));
}

bool contains(std::string_view s, std::string_view needle) {
    return s.find(needle) != std::string_view::npos;
}

// [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]{assistant}</s>[INST] {user} [/INST]
void llama2(std::ostringstream& ss, const std::vector<ChatMessage>& msgs) {
    bool inside_turn = false;
    for (const auto& m : msgs) {
        if (!inside_turn) {
            ss << "[INST] ";
            inside_turn = true;
        }
        if (m.role == "system") {
            ss << "<<SYS>>\n" << m.content << "\n<</SYS>>\n\n";
        } else if (m.role == "user") {
            ss << m.content << " [/INST]";
        } else {
            ss << m.content << "</s>";
            inside_turn = false;
        }
    }
}

// Mistral v3 layout: [INST] {system}\n\n{user}[/INST] {assistant}</s>
void mistral(std::ostringstream& ss, const std::vector<ChatMessage>& msgs) {
    bool inside_turn = false;
    for (const auto& m : msgs) {
        if (!inside_turn) {
            ss << "[INST] ";
            inside_turn = true;
        }
        if (m.role == "system") {
            ss << m.content << "\n\n";
        } else if (m.role == "user") {
            ss << m.content << "[/INST]";
        } else {
            ss << " " << trim(m.content) << "</s>";
            inside_turn = false;
        }
    }
}

// Gemma has no system role: the system text is prepended to the first user turn.
void gemma(std::ostringstream& ss, const std::vector<ChatMessage>& msgs, bool add_assistant) {
    std::string system;
    for (const auto& m : msgs) {
        if (m.role == "system") {
            system += trim(m.content);
            continue;
        }
        const std::string role = m.role == "assistant" ? "model" : m.role;
        ss << "<start_of_turn>" << role << "\n";
        if (!system.empty() && role != "model") {
            ss << system << "\n\n";
            system.clear();
        }
        ss << trim(m.content) << "<end_of_turn>\n";
    }
    if (add_assistant) ss << "<start_of_turn>model\n";
}

std::string capitalized(const std::string& role) {
    std::string r = role;
    if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') r[0] = char(r[0] - 'a' + 'A');
    return r;
}

}  // namespace

ChatTemplate ChatTemplate::detect(std::string_view t) {
    if (contains(t, "<|im_start|>")) return ChatTemplate(ChatFormat::ChatML);
    if (contains(t, "[INST]"))
        return ChatTemplate(contains(t, "<<SYS>>") ? ChatFormat::Llama2 : ChatFormat::Mistral);
    if (contains(t, "<|assistant|>") && contains(t, "<|end|>"))
        return ChatTemplate(ChatFormat::Phi3);
    if (contains(t, "<|user|>")) return ChatTemplate(ChatFormat::Zephyr);
    if (contains(t, "<start_of_turn>")) return ChatTemplate(ChatFormat::Gemma);
    if (contains(t, "<|start_header_id|>") && contains(t, "<|end_header_id|>"))
        return ChatTemplate(ChatFormat::Llama3);
    return ChatTemplate(ChatFormat::Plain);
}

ChatTemplate ChatTemplate::from_name(std::string_view name) {
    for (const auto& [n, f] : kNames)
        if (n == name) return ChatTemplate(f);
    throw Error("unknown chat template '" + std::string(name) + "' (known: " + known_names() + ")");
}

std::string ChatTemplate::known_names() {
    std::string out;
    for (const auto& [n, f] : kNames) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

std::string_view ChatTemplate::name() const {
    for (const auto& [n, f] : kNames)
        if (f == format_) return n;
    return "plain";
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& msgs, bool add_assistant) const {
    std::ostringstream ss;
    switch (format_) {
        case ChatFormat::ChatML:
            for (const auto& m : msgs)
                ss << "<|im_start|>" << m.role << "\n" << m.content << "<|im_end|>\n";
            if (add_assistant) ss << "<|im_start|>assistant\n";
            break;
        case ChatFormat::Llama2:
            llama2(ss, msgs);
            break;
        case ChatFormat::Mistral:
            mistral(ss, msgs);
            break;
        case ChatFormat::Llama3:
            for (const auto& m : msgs)
                ss << "<|start_header_id|>" << m.role << "<|end_header_id|>\n\n"
                   << trim(m.content) << "<|eot_id|>";
            if (add_assistant) ss << "<|start_header_id|>assistant<|end_header_id|>\n\n";
            break;
        case ChatFormat::Zephyr:
            for (const auto& m : msgs)
                ss << "<|" << m.role << "|>\n" << m.content << "<|endoftext|>\n";
            if (add_assistant) ss << "<|assistant|>\n";
            break;
        case ChatFormat::Gemma:
            gemma(ss, msgs, add_assistant);
            break;
        case ChatFormat::Phi3:
            for (const auto& m : msgs) ss << "<|" << m.role << "|>\n" << m.content << "<|end|>\n";
            if (add_assistant) ss << "<|assistant|>\n";
            break;
        case ChatFormat::Plain:
            // No markup the model would know: a script-like transcript it can continue.
            for (const auto& m : msgs) ss << capitalized(m.role) << ": " << m.content << "\n";
            if (add_assistant) ss << "Assistant:";
            break;
    }
    return ss.str();
}

std::string ChatTemplate::apply_last(const std::vector<ChatMessage>& msgs,
                                     bool add_assistant) const {
    if (msgs.empty()) return "";
    const std::vector<ChatMessage> before(msgs.begin(), msgs.end() - 1);
    const std::string prev = apply(before, false);
    const std::string all = apply(msgs, add_assistant);
    // Every format renders earlier messages identically whatever follows, so the new
    // text is a suffix; fall back to the whole text if that ever stops being true.
    if (all.compare(0, prev.size(), prev) == 0) return all.substr(prev.size());
    return all;
}

}  // namespace lcx
