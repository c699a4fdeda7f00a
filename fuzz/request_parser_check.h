// The checks of request_parser_fuzz, shared with the replay test in tests/server: the
// bytes are the body of every POST route's parser (chat and text completions, embeddings,
// /detokenize's token array), with a chat template picked by the body's length. Each must
// parse or be refused with ApiError, a 4xx whose message is not empty and whose JSON, as
// the server renders it, is valid. Any other exception escapes to the caller. Returns an
// empty string when all holds, else what failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

#include "runtime/chat_template.h"
#include "server/api_error.h"
#include "server/request_parser.h"
#include "vocab/vocab.h"

namespace lcx::fuzz {

inline std::string check_refusal(const server::ApiError& e) {
    if (e.status() < 400 || e.status() >= 500)
        return "status " + std::to_string(e.status()) + " for: " + e.what();
    if (std::string(e.what()).empty()) return "an error without a message";
    const std::string s =
        e.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (!nlohmann::json::accept(s)) return "the error renders as invalid JSON";
    return {};
}

inline std::string check_request_parser(const Vocab& vocab, const uint8_t* data, size_t size) {
    static constexpr ChatFormat kFormats[] = {
        ChatFormat::Llama2, ChatFormat::Llama3, ChatFormat::ChatML, ChatFormat::Mistral,
        ChatFormat::Zephyr, ChatFormat::Gemma,  ChatFormat::Phi3,   ChatFormat::Plain};
    const std::string body(reinterpret_cast<const char*>(data), size);
    nlohmann::json j;
    try {
        j = server::parse_body(body);
    } catch (const server::ApiError& e) {
        return check_refusal(e);
    }
    const ChatTemplate tmpl(kFormats[size % std::size(kFormats)]);
    const int64_t n_ctx_slot = 256;
    std::string failed;
    auto run = [&](auto&& f) {
        try {
            f();
        } catch (const server::ApiError& e) {
            if (failed.empty()) failed = check_refusal(e);
        }
    };
    run([&] { (void)server::parse_chat_request(j, vocab, tmpl, n_ctx_slot); });
    run([&] { (void)server::parse_completion_request(j, vocab, n_ctx_slot); });
    run([&] { (void)server::parse_embedding_request(j, vocab, n_ctx_slot, 64); });
    run([&] {
        auto it = j.find("tokens");
        if (it != j.end()) (void)vocab.detokenize(server::parse_token_array(*it, "tokens", vocab));
    });
    return failed;
}

}  // namespace lcx::fuzz
