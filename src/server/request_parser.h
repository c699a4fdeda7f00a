// Turns the JSON body of an OpenAI-style request into a scheduler task. Every field is
// type- and range-checked; a bad one throws ApiError (400) naming it, so malformed input
// never reaches the engine.
//
// Accepted: model, messages / prompt, max_tokens, max_completion_tokens, temperature,
// top_p, stop, seed, presence_penalty, frequency_penalty, n (only 1), stream,
// stream_options.include_usage, user; llama.cpp's top_k, min_p, typical_p,
// repeat_penalty, repeat_last_n. Rejected with 400 (not implemented): logprobs /
// top_logprobs, response_format other than {"type":"text"}, tools / functions, echo,
// suffix, best_of > 1. Other fields are ignored, as OpenAI-compatible servers do.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/chat_template.h"
#include "server/task.h"
#include "vocab/vocab.h"

namespace lcx::server {

struct ParsedRequest {
    TaskParams task;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    std::string model;           // as the client named it ("" when absent)
};

// POST /v1/chat/completions: messages through the chat template.
ParsedRequest parse_chat_request(const nlohmann::json& body, const Vocab& vocab,
                                 const ChatTemplate& tmpl, int64_t n_ctx_slot);
// POST /v1/completions: a prompt string, or an array of token ids.
ParsedRequest parse_completion_request(const nlohmann::json& body, const Vocab& vocab,
                                       int64_t n_ctx_slot);

struct ParsedEmbeddingRequest {
    std::vector<std::vector<int32_t>> inputs;  // tokens of each input, in order
    bool base64 = false;                       // encoding_format "base64"
    std::string model;
};

// POST /v1/embeddings: `input` is a string, an array of strings, an array of token ids
// or an array of such arrays (at most 2048 inputs); `encoding_format` "float" (default)
// or "base64"; `dimensions`, when given, must equal the model's n_embd.
ParsedEmbeddingRequest parse_embedding_request(const nlohmann::json& body, const Vocab& vocab,
                                               int64_t n_ctx_slot, int64_t n_embd);

// Body text to JSON; throws ApiError 400 for malformed JSON or a body that is not an object.
nlohmann::json parse_body(const std::string& body);

// A list of token ids (for /detokenize and token-array prompts), each checked against
// the vocabulary; `param` names the field in errors.
std::vector<int32_t> parse_token_array(const nlohmann::json& v, const std::string& param,
                                       const Vocab& vocab);

}  // namespace lcx::server
