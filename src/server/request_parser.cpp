#include "server/request_parser.h"

#include <cmath>
#include <optional>

#include "server/api_error.h"

namespace lcx::server {

using nlohmann::json;

namespace {

const json* field(const json& body, const std::string& name) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
}

std::optional<double> get_number(const json& body, const std::string& name, double lo, double hi) {
    const json* v = field(body, name);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw invalid_field(name, "'" + name + "' must be a number");
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
        throw invalid_field(
            name, "'" + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump());
    return x;
}

std::optional<int64_t> get_int(const json& body, const std::string& name, int64_t lo, int64_t hi) {
    const json* v = field(body, name);
    if (!v) return std::nullopt;
    int64_t x = 0;
    if (v->is_number_integer()) {
        x = v->is_number_unsigned() ? int64_t(std::min<uint64_t>(v->get<uint64_t>(), INT64_MAX))
                                    : v->get<int64_t>();
    } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
               std::fabs(v->get<double>()) < 9e15) {
        x = int64_t(v->get<double>());  // 5.0 is an integer too
    } else {
        throw invalid_field(name, "'" + name + "' must be an integer");
    }
    if (!(x >= lo && x <= hi))
        throw invalid_field(name, "'" + name + "' must be between " + std::to_string(lo) + " and " +
                                      std::to_string(hi));
    return x;
}

std::optional<bool> get_bool(const json& body, const std::string& name) {
    const json* v = field(body, name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw invalid_field(name, "'" + name + "' must be true or false");
    return v->get<bool>();
}

void reject_unsupported(const json& body) {
    if (const json* v = field(body, "logprobs")) {
        if (!(v->is_boolean() && !v->get<bool>()))
            throw invalid_field("logprobs", "'logprobs' is not supported by this server");
    }
    if (field(body, "top_logprobs"))
        throw invalid_field("top_logprobs", "'top_logprobs' is not supported by this server");
    if (const json* v = field(body, "response_format")) {
        if (!v->is_object())
            throw invalid_field("response_format", "'response_format' must be an object");
        auto t = v->find("type");
        if (t == v->end() || !t->is_string())
            throw invalid_field("response_format.type", "'response_format.type' must be a string");
        if (t->get<std::string>() != "text")
            throw invalid_field("response_format",
                                "response_format '" + t->get<std::string>() +
                                    "' is not supported by this server (only 'text')");
    }
    for (const char* name : {"tools", "functions"}) {
        if (const json* v = field(body, name); v && !(v->is_array() && v->empty()))
            throw invalid_field(name,
                                std::string("'") + name + "' (tool calling) is not supported");
    }
    if (auto echo = get_bool(body, "echo"); echo && *echo)
        throw invalid_field("echo", "'echo' is not supported by this server");
    if (const json* v = field(body, "suffix");
        v && !(v->is_string() && v->get<std::string>().empty()))
        throw invalid_field("suffix", "'suffix' (insertion) is not supported by this server");
    if (auto best_of = get_int(body, "best_of", 1, 1 << 20); best_of && *best_of != 1)
        throw invalid_field("best_of", "'best_of' must be 1");
}

void parse_common(const json& body, ParsedRequest& r) {
    if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
    reject_unsupported(body);
    if (const json* v = field(body, "model")) {
        if (!v->is_string()) throw invalid_field("model", "'model' must be a string");
        r.model = v->get<std::string>();
    }
    if (auto n = get_int(body, "n", 1, 1 << 20); n && *n != 1)
        throw invalid_field("n", "'n' must be 1: this server returns one choice per request");
    if (auto s = get_bool(body, "stream")) r.stream = *s;
    if (const json* v = field(body, "stream_options")) {
        if (!v->is_object())
            throw invalid_field("stream_options", "'stream_options' must be an object");
        if (auto u = get_bool(*v, "include_usage")) r.include_usage = *u;
    }
    if (const json* v = field(body, "user"); v && !v->is_string())
        throw invalid_field("user", "'user' must be a string");

    TaskParams& t = r.task;
    // OpenAI's `max_tokens` was renamed `max_completion_tokens`; either is taken.
    for (const char* name : {"max_completion_tokens", "max_tokens", "n_predict"})
        if (auto n = get_int(body, name, 1, INT32_MAX)) {
            t.n_predict = int32_t(*n);
            break;
        }
    SamplerParams& s = t.sampling;
    if (auto v = get_number(body, "temperature", 0.0, 2.0)) s.temperature = float(*v);
    if (auto v = get_number(body, "top_p", 0.0, 1.0)) s.top_p = float(*v);
    if (auto v = get_number(body, "presence_penalty", -2.0, 2.0)) s.presence_penalty = float(*v);
    if (auto v = get_number(body, "frequency_penalty", -2.0, 2.0)) s.frequency_penalty = float(*v);
    if (auto v = get_int(body, "top_k", 0, INT32_MAX)) s.top_k = int32_t(*v);
    if (auto v = get_number(body, "min_p", 0.0, 1.0)) s.min_p = float(*v);
    if (auto v = get_number(body, "typical_p", 0.0, 1.0)) s.typical_p = float(*v);
    if (auto v = get_number(body, "repeat_penalty", 0.0, 100.0)) s.repeat_penalty = float(*v);
    if (auto v = get_int(body, "repeat_last_n", -1, INT32_MAX)) s.penalty_last_n = int32_t(*v);
    if (const json* v = field(body, "seed")) {
        if (!v->is_number_integer()) throw invalid_field("seed", "'seed' must be an integer");
        // Any 64-bit value is a seed; kRandomSeed keeps its meaning (random).
        s.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
    }

    if (const json* v = field(body, "stop")) {
        if (v->is_string()) {
            t.stop.push_back(v->get<std::string>());
        } else if (v->is_array()) {
            if (v->size() > 16) throw invalid_field("stop", "'stop' may hold at most 16 strings");
            for (size_t i = 0; i < v->size(); ++i) {
                if (!(*v)[i].is_string())
                    throw invalid_field("stop", "'stop' must be a string or an array of strings");
                t.stop.push_back((*v)[i].get<std::string>());
            }
        } else {
            throw invalid_field("stop", "'stop' must be a string or an array of strings");
        }
        for (const auto& st : t.stop)
            if (st.empty()) throw invalid_field("stop", "'stop' strings must not be empty");
    }
}

void check_prompt_fits(const std::vector<int32_t>& prompt, int64_t n_ctx_slot,
                       const std::string& param) {
    if (prompt.empty()) throw invalid_field(param, "the prompt gives no tokens");
    if (int64_t(prompt.size()) > n_ctx_slot)
        throw ApiError(400,
                       "the prompt has " + std::to_string(prompt.size()) +
                           " tokens but the context holds " + std::to_string(n_ctx_slot) +
                           " per request (start the server with a larger -c)",
                       param, "invalid_request_error", "context_length_exceeded");
}

// A message's content: a string, or OpenAI's array of parts of which only text parts
// are understood.
std::string message_content(const json& m, const std::string& param) {
    auto it = m.find("content");
    if (it == m.end()) throw invalid_field(param, "'" + param + "' is missing");
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array()) {
        std::string text;
        for (size_t i = 0; i < it->size(); ++i) {
            const json& part = (*it)[i];
            const std::string pp = param + "[" + std::to_string(i) + "]";
            if (!part.is_object()) throw invalid_field(pp, "'" + pp + "' must be an object");
            auto type = part.find("type");
            if (type == part.end() || !type->is_string() || type->get<std::string>() != "text")
                throw invalid_field(pp + ".type",
                                    "only content parts of type 'text' are supported");
            auto tx = part.find("text");
            if (tx == part.end() || !tx->is_string())
                throw invalid_field(pp + ".text", "'" + pp + ".text' must be a string");
            text += tx->get<std::string>();
        }
        return text;
    }
    throw invalid_field(param, "'" + param + "' must be a string or an array of text parts");
}

}  // namespace

json parse_body(const std::string& body) {
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {
        throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what(), "",
                       "invalid_request_error", "invalid_json");
    }
    if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
    return j;
}

std::vector<int32_t> parse_token_array(const json& v, const std::string& param,
                                       const Vocab& vocab) {
    if (!v.is_array()) throw invalid_field(param, "'" + param + "' must be an array of token ids");
    std::vector<int32_t> ids;
    ids.reserve(v.size());
    for (const json& x : v) {
        if (!x.is_number_integer())
            throw invalid_field(param, "'" + param + "' must be an array of token ids");
        const int64_t id = x.is_number_unsigned()
                               ? int64_t(std::min<uint64_t>(x.get<uint64_t>(), INT64_MAX))
                               : x.get<int64_t>();
        if (!(id >= 0 && id < vocab.n_tokens()))
            throw invalid_field(param, "token id " + std::to_string(id) + " in '" + param +
                                           "' is outside the vocabulary (" +
                                           std::to_string(vocab.n_tokens()) + " tokens)");
        ids.push_back(int32_t(id));
    }
    return ids;
}

ParsedRequest parse_chat_request(const json& body, const Vocab& vocab, const ChatTemplate& tmpl,
                                 int64_t n_ctx_slot) {
    ParsedRequest r;
    parse_common(body, r);
    const json* msgs = field(body, "messages");
    if (!msgs) throw invalid_field("messages", "'messages' is required");
    if (!msgs->is_array()) throw invalid_field("messages", "'messages' must be an array");
    if (msgs->empty()) throw invalid_field("messages", "'messages' must not be empty");
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < msgs->size(); ++i) {
        const json& m = (*msgs)[i];
        const std::string p = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) throw invalid_field(p, "'" + p + "' must be an object");
        auto role = m.find("role");
        if (role == m.end() || !role->is_string())
            throw invalid_field(p + ".role", "'" + p + ".role' must be a string");
        std::string rs = role->get<std::string>();
        if (rs == "developer") rs = "system";  // OpenAI's newer name for the system role
        if (rs != "system" && rs != "user" && rs != "assistant")
            throw invalid_field(p + ".role",
                                "'" + p + ".role' must be system, developer, user or assistant");
        messages.push_back({rs, message_content(m, p + ".content")});
    }
    const std::string text = tmpl.apply(messages, /*add_assistant=*/true);
    r.task.prompt = vocab.tokenize(text, /*add_special=*/true, /*parse_special=*/true);
    check_prompt_fits(r.task.prompt, n_ctx_slot, "messages");
    return r;
}

ParsedRequest parse_completion_request(const json& body, const Vocab& vocab, int64_t n_ctx_slot) {
    ParsedRequest r;
    parse_common(body, r);
    const json* p = field(body, "prompt");
    if (!p) throw invalid_field("prompt", "'prompt' is required");
    const json* one = p;
    // OpenAI allows a batch of prompts; with n = 1 only a batch of one is served.
    if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
        if (p->size() != 1)
            throw invalid_field("prompt", "'prompt' may hold only one prompt on this server");
        one = &(*p)[0];
    }
    if (one->is_string()) {
        r.task.prompt = vocab.tokenize(one->get<std::string>(), /*add_special=*/true,
                                       /*parse_special=*/true);
    } else if (one->is_array()) {
        r.task.prompt = parse_token_array(*one, "prompt", vocab);
    } else {
        throw invalid_field("prompt", "'prompt' must be a string or an array of token ids");
    }
    check_prompt_fits(r.task.prompt, n_ctx_slot, "prompt");
    return r;
}

ParsedEmbeddingRequest parse_embedding_request(const json& body, const Vocab& vocab,
                                               int64_t n_ctx_slot, int64_t n_embd) {
    if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
    ParsedEmbeddingRequest r;
    if (const json* v = field(body, "model")) {
        if (!v->is_string()) throw invalid_field("model", "'model' must be a string");
        r.model = v->get<std::string>();
    }
    if (const json* v = field(body, "encoding_format")) {
        if (!v->is_string() ||
            (v->get<std::string>() != "float" && v->get<std::string>() != "base64"))
            throw invalid_field("encoding_format",
                                "'encoding_format' must be \"float\" or \"base64\"");
        r.base64 = v->get<std::string>() == "base64";
    }
    if (auto d = get_int(body, "dimensions", 1, INT32_MAX); d && *d != n_embd)
        throw invalid_field("dimensions", "'dimensions' must be " + std::to_string(n_embd) +
                                              " (this model's embedding size) or absent");
    if (const json* v = field(body, "user"); v && !v->is_string())
        throw invalid_field("user", "'user' must be a string");

    const json* in = field(body, "input");
    if (!in) throw invalid_field("input", "'input' is required");
    const char* shape =
        "'input' must be a string, an array of strings, an array of token ids or an array of "
        "token id arrays";
    auto tokenize = [&](const json& one, const std::string& param) {
        std::vector<int32_t> ids;
        if (one.is_string())
            ids = vocab.tokenize(one.get<std::string>(), /*add_special=*/true,
                                 /*parse_special=*/true);
        else
            ids = parse_token_array(one, param, vocab);
        check_prompt_fits(ids, n_ctx_slot, param);
        return ids;
    };
    if (in->is_string()) {
        r.inputs.push_back(tokenize(*in, "input"));
    } else if (in->is_array()) {
        if (in->empty()) throw invalid_field("input", "'input' must not be empty");
        if (in->size() > 2048) throw invalid_field("input", "'input' may hold at most 2048 inputs");
        if ((*in)[0].is_number()) {
            r.inputs.push_back(tokenize(*in, "input"));
        } else {
            for (size_t i = 0; i < in->size(); ++i) {
                const json& one = (*in)[i];
                if (!one.is_string() && !one.is_array()) throw invalid_field("input", shape);
                r.inputs.push_back(tokenize(one, "input[" + std::to_string(i) + "]"));
            }
        }
    } else {
        throw invalid_field("input", shape);
    }
    return r;
}

}  // namespace lcx::server
