// Built-in chat formats against hand-written expected prompts (the layouts of the
// models' own Jinja templates, as llama.cpp renders them).
#include "runtime/chat_template.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace lcx {
namespace {

const std::vector<ChatMessage> kChat{
    {"system", "You are helpful."},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
};

std::string render(std::string_view name) {
    return ChatTemplate::from_name(name).apply(kChat, true);
}

TEST(ChatTemplate, ChatML) {
    EXPECT_EQ(render("chatml"),
              "<|im_start|>system\nYou are helpful.<|im_end|>\n"
              "<|im_start|>user\nHello<|im_end|>\n"
              "<|im_start|>assistant\nHi there<|im_end|>\n"
              "<|im_start|>user\nWho are you<|im_end|>\n"
              "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama2) {
    EXPECT_EQ(render("llama2"),
              "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello [/INST]Hi there</s>"
              "[INST] Who are you [/INST]");
}

TEST(ChatTemplate, Llama3) {
    EXPECT_EQ(render("llama3"),
              "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Mistral) {
    EXPECT_EQ(render("mistral"),
              "[INST] You are helpful.\n\nHello[/INST] Hi there</s>[INST] Who are you[/INST]");
}

TEST(ChatTemplate, Zephyr) {
    EXPECT_EQ(render("zephyr"),
              "<|system|>\nYou are helpful.<|endoftext|>\n<|user|>\nHello<|endoftext|>\n"
              "<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n"
              "<|assistant|>\n");
}

TEST(ChatTemplate, GemmaFoldsSystemIntoFirstUserTurn) {
    EXPECT_EQ(render("gemma"),
              "<start_of_turn>user\nYou are helpful.\n\nHello<end_of_turn>\n"
              "<start_of_turn>model\nHi there<end_of_turn>\n"
              "<start_of_turn>user\nWho are you<end_of_turn>\n"
              "<start_of_turn>model\n");
}

TEST(ChatTemplate, Phi3) {
    EXPECT_EQ(render("phi3"),
              "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHello<|end|>\n"
              "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, Plain) {
    EXPECT_EQ(render("plain"),
              "System: You are helpful.\nUser: Hello\nAssistant: Hi there\nUser: Who are you\n"
              "Assistant:");
}

TEST(ChatTemplate, DetectsFromJinja) {
    EXPECT_EQ(ChatTemplate::detect("{% for m in messages %}<|im_start|>{{m.role}}").name(),
              "chatml");
    EXPECT_EQ(ChatTemplate::detect("{{ '[INST] <<SYS>>\\n' + system }}").name(), "llama2");
    EXPECT_EQ(ChatTemplate::detect("{{ bos_token }}{{ '[INST] ' + m['content'] }}").name(),
              "mistral");
    EXPECT_EQ(ChatTemplate::detect("<|start_header_id|>x<|end_header_id|>").name(), "llama3");
    EXPECT_EQ(ChatTemplate::detect("<|user|>\n{{ m }}{{ eos_token }}").name(), "zephyr");
    EXPECT_EQ(ChatTemplate::detect("<|user|>{{m}}<|end|><|assistant|>").name(), "phi3");
    EXPECT_EQ(ChatTemplate::detect("<start_of_turn>user").name(), "gemma");
    EXPECT_EQ(ChatTemplate::detect("").name(), "plain");
}

TEST(ChatTemplate, UnknownNameIsAnError) { EXPECT_THROW(ChatTemplate::from_name("vicuna"), Error); }

TEST(ChatTemplate, ApplyLastGivesOnlyTheNewTurn) {
    auto t = ChatTemplate::from_name("chatml");
    EXPECT_EQ(t.apply_last(kChat, true),
              "<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace lcx
