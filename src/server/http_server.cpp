#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "server/api_error.h"
#include "server/request_parser.h"

namespace lcx::server {

using nlohmann::json;

namespace {

// Generated text may hold invalid UTF-8 (a model can emit stray byte tokens); replace
// it rather than let the JSON writer throw.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
    if (e.status() == 503) res.set_header("Retry-After", "1");
    send_json(res, e.status(), e.to_json());
}

const char* known_routes[] = {"/v1/chat/completions",
                              "/v1/completions",
                              "/v1/models",
                              "/v1/embeddings",
                              "/health",
                              "/metrics",
                              "/tokenize",
                              "/detokenize"};

std::string route_label(const std::string& path) {
    for (const char* r : known_routes)
        if (path == r) return r;
    if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
    return "other";
}

json usage_json(const TaskEvent& done) {
    return {{"prompt_tokens", done.prompt_tokens},
            {"completion_tokens", done.completion_tokens},
            {"total_tokens", done.prompt_tokens + done.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", done.cached_tokens}}}};
}

// Standard base64 (with padding) of raw bytes: OpenAI's "base64" embeddings are the
// little-endian float32 values so encoded.
std::string base64(const void* data, size_t n) {
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto* p = static_cast<const unsigned char*>(data);
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t b = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) |
                           (i + 2 < n ? uint32_t(p[i + 2]) : 0);
        out += kAlphabet[(b >> 18) & 63];
        out += kAlphabet[(b >> 12) & 63];
        out += i + 1 < n ? kAlphabet[(b >> 6) & 63] : '=';
        out += i + 2 < n ? kAlphabet[b & 63] : '=';
    }
    return out;
}

// OpenAI knows only these two for a finished generation.
const char* openai_finish(FinishReason r) { return r == FinishReason::Length ? "length" : "stop"; }

}  // namespace

HttpServer::HttpServer(const ServerOptions& options)
    : options_(options), http_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() { stop(); }

const Engine& HttpServer::engine() const { return *engine_; }

void HttpServer::set_engine(std::unique_ptr<Engine> engine) {
    engine_ = std::move(engine);
    ready_.store(true);
}

int HttpServer::start(int32_t n_parallel, int32_t max_queue) {
    // Every streaming request holds a thread for its whole length, queued ones too; keep
    // spare threads so /health and /metrics answer while all slots are busy.
    size_t threads = options_.http_threads > 0
                         ? size_t(options_.http_threads)
                         : size_t(std::min<int64_t>(int64_t(n_parallel) + max_queue + 8, 512));
    http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_->set_payload_max_length(options_.max_body_bytes);
    http_->set_read_timeout(options_.timeout_s, 0);
    http_->set_write_timeout(options_.timeout_s, 0);
    http_->set_keep_alive_timeout(5);
    http_->set_socket_options([this](socket_t sock) {
        httplib::default_socket_options(sock);
        listen_fd_ = int(sock);
    });
    started_at_ = int64_t(std::time(nullptr));
    install_routes();

    int port = options_.port;
    if (port == 0) {
        port = http_->bind_to_any_port(options_.host);
        check(port > 0, "cannot bind " + options_.host + " to a free port");
    } else {
        check(http_->bind_to_port(options_.host, port),
              "cannot bind " + options_.host + ":" + std::to_string(port) +
                  " (in use, or not an address of this machine)");
    }
    // The library listens with a backlog of 5: when more clients connect at once than the
    // accept thread has taken (a busy 2-core machine), the kernel drops their SYNs and
    // they retry only after a second. Listening again on Linux just raises the backlog.
    if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);
    thread_ = std::thread([this] { http_->listen_after_bind(); });
    return port;
}

void HttpServer::stop() {
    // Streams the scheduler has just ended still have their last chunks and `[DONE]` to
    // write; stopping the listener first would cut them off mid-response. Give them a
    // bounded moment to drain.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (http_) http_->stop();
    if (thread_.joinable()) thread_.join();
}

void HttpServer::count_response(const httplib::Request& req, const httplib::Response& res) {
    std::lock_guard lock(metrics_mutex_);
    ++responses_[route_label(req.path)][res.status];
}

void HttpServer::install_routes() {
    auto& h = *http_;
    h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        // cpp-httplib 0.11 would gzip text/event-stream and hold each event in the
        // compressor; answering uncompressed keeps streams live. The request object is
        // the server's own, mutable one.
        const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
        if (req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
        if (!options_.api_key.empty() &&
            req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
            send_error(res, ApiError(401,
                                     "invalid or missing API key (send 'Authorization: "
                                     "Bearer KEY')",
                                     "", "authentication_error", "invalid_api_key"));
            return httplib::Server::HandlerResponse::Handled;
        }
        if (!ready_.load()) {
            send_error(res, ApiError(503, "the model is loading", "", "", "model_loading"));
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    h.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
            // Errors cpp-httplib raises itself (no route, body too large, bad request line)
            // come without a body: give them OpenAI's shape too.
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            std::string msg;
            if (res.status == 404)
                msg = "no route for " + req.method + " " + req.path;
            else if (res.status == 413)
                msg = "the request body is larger than " + std::to_string(options_.max_body_bytes) +
                      " bytes";
            else
                msg = "the request failed with HTTP status " + std::to_string(res.status);
            send_json(res, res.status, ApiError(res.status, msg).to_json());
            return httplib::Server::HandlerResponse::Handled;
        }));
    h.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const ApiError& e) {
                send_error(res, e);
            } catch (const std::exception& e) {
                log::error("request failed: %s", e.what());
                send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
            } catch (...) {
                send_error(res, ApiError(500, "internal error"));
            }
        });
    h.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        count_response(req, res);
        log::debug("%s %s -> %d", req.method.c_str(), req.path.c_str(), res.status);
    });

    h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        if (!ready_.load())
            send_json(res, 503, {{"status", "loading model"}});
        else
            send_json(res, 200, {{"status", "ok"}});
    });
    h.Get("/v1/models",
          [this](const httplib::Request&, httplib::Response& res) { handle_models(res); });
    h.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
        if (req.matches[1] != engine().model_id)
            throw ApiError(404, "the model '" + std::string(req.matches[1]) + "' does not exist",
                           "model", "", "model_not_found");
        send_json(res, 200,
                  {{"id", engine().model_id},
                   {"object", "model"},
                   {"created", started_at_},
                   {"owned_by", "llama-cxx"}});
    });
    h.Get("/metrics",
          [this](const httplib::Request&, httplib::Response& res) { handle_metrics(res); });
    h.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
        handle_generation(req, res, /*chat=*/true);
    });
    h.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
        handle_generation(req, res, /*chat=*/false);
    });
    h.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
        handle_tokenize(req, res);
    });
    h.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
        handle_detokenize(req, res);
    });
    h.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
        handle_embeddings(req, res);
    });
}

void HttpServer::handle_models(httplib::Response& res) {
    const Engine& e = engine();
    json model = {{"id", e.model_id},
                  {"object", "model"},
                  {"created", started_at_},
                  {"owned_by", "llama-cxx"},
                  {"meta",
                   {{"n_ctx_slot", e.n_ctx_slot},
                    {"n_ctx_train", e.n_ctx_train},
                    {"n_vocab", e.vocab.n_tokens()},
                    {"n_parallel", e.scheduler->params().n_parallel}}}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
}

void HttpServer::handle_embeddings(const httplib::Request& req, httplib::Response& res) {
    const Engine& e = engine();
    const json body = parse_body(req.body);
    ParsedEmbeddingRequest pr = parse_embedding_request(body, e.vocab, e.n_ctx_slot, e.n_embd);
    int64_t n_tokens = 0;
    for (const auto& in : pr.inputs) n_tokens += int64_t(in.size());
    auto task = std::make_shared<EmbeddingTask>(std::move(pr.inputs));
    if (!e.scheduler->submit(task))
        throw ApiError(503,
                       "the server is busy: the embedding queue is full (or the server is "
                       "shutting down); retry later",
                       "", "", "server_busy");
    ++in_flight_;
    // The scheduler always completes a task (at the latest when it shuts down).
    while (!task->wait(std::chrono::milliseconds(1000))) {
    }
    --in_flight_;
    if (!task->error().empty()) throw ApiError(task->status(), task->error());
    json data = json::array();
    for (size_t i = 0; i < task->vectors().size(); ++i) {
        const std::vector<float>& v = task->vectors()[i];
        data.push_back({{"object", "embedding"},
                        {"index", i},
                        {"embedding",
                         pr.base64 ? json(base64(v.data(), v.size() * sizeof(float))) : json(v)}});
    }
    send_json(res, 200,
              {{"object", "list"},
               {"data", std::move(data)},
               {"model", e.model_id},
               {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}});
}

void HttpServer::handle_tokenize(const httplib::Request& req, httplib::Response& res) {
    const json body = parse_body(req.body);
    auto it = body.find("content");
    if (it == body.end() || !it->is_string())
        throw invalid_field("content", "'content' must be a string");
    auto flag = [&](const char* name, bool def) {
        auto f = body.find(name);
        if (f == body.end() || f->is_null()) return def;
        if (!f->is_boolean())
            throw invalid_field(name, std::string("'") + name + "' must be true or false");
        return f->get<bool>();
    };
    const bool add_special = flag("add_special", false);
    const bool parse_special = flag("parse_special", true);
    const bool with_pieces = flag("with_pieces", false);
    const Vocab& v = engine().vocab;
    const auto ids = v.tokenize(it->get<std::string>(), add_special, parse_special);
    json tokens = json::array();
    for (int32_t id : ids) {
        if (with_pieces)
            tokens.push_back({{"id", id}, {"piece", v.token_to_piece(id)}});
        else
            tokens.push_back(id);
    }
    send_json(res, 200, {{"tokens", tokens}});
}

void HttpServer::handle_detokenize(const httplib::Request& req, httplib::Response& res) {
    const json body = parse_body(req.body);
    auto it = body.find("tokens");
    if (it == body.end()) throw invalid_field("tokens", "'tokens' is required");
    const auto ids = parse_token_array(*it, "tokens", engine().vocab);
    send_json(res, 200, {{"content", engine().vocab.detokenize(ids)}});
}

void HttpServer::handle_metrics(httplib::Response& res) {
    const SchedulerStats s = engine().scheduler->stats();
    std::ostringstream o;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
        o << "# HELP llamacxx_" << name << ' ' << help << "\n# TYPE llamacxx_" << name << ' '
          << type << "\nllamacxx_" << name << ' ' << value << '\n';
    };
    o << "# HELP llamacxx_requests_total HTTP responses by route and status.\n"
         "# TYPE llamacxx_requests_total counter\n";
    {
        std::lock_guard lock(metrics_mutex_);
        for (const auto& [route, by_status] : responses_)
            for (const auto& [status, n] : by_status)
                o << "llamacxx_requests_total{route=\"" << route << "\",status=\"" << status
                  << "\"} " << n << '\n';
    }
    metric("requests_in_flight", "gauge", "Generation requests being served or queued.",
           double(in_flight_.load()));
    metric("prompt_tokens_total", "counter", "Prompt tokens evaluated.", double(s.prompt_tokens));
    metric("prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's cache.",
           double(s.cached_tokens));
    metric("generated_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens));
    metric("decode_seconds_total", "counter", "Time spent decoding batches.", s.decode_seconds);
    metric("decode_steps_total", "counter", "Batches decoded.", double(s.decode_steps));
    const double busy = s.decode_seconds > 0 ? s.decode_seconds : 1.0;
    metric("generated_tokens_per_second", "gauge",
           "Generated tokens per second of decoding, since start.",
           s.decode_seconds > 0 ? double(s.generated_tokens) / busy : 0.0);
    metric("tokens_per_second", "gauge",
           "Prompt and generated tokens per second of decoding, since start.",
           s.decode_seconds > 0 ? double(s.generated_tokens + s.prompt_tokens) / busy : 0.0);
    metric("queue_depth", "gauge", "Requests waiting for a slot.", double(s.queue_depth));
    metric("slots_busy", "gauge", "Slots serving a request.", double(s.slots_busy));
    metric("slots_total", "gauge", "Slots (--parallel).", double(s.n_slots));
    metric("requests_completed_total", "counter", "Generation requests finished.",
           double(s.tasks_done));
    res.status = 200;
    res.set_content(o.str(), "text/plain; version=0.0.4");
}

void HttpServer::handle_generation(const httplib::Request& req, httplib::Response& res, bool chat) {
    const Engine& e = engine();
    const json body = parse_body(req.body);
    ParsedRequest pr = chat ? parse_chat_request(body, e.vocab, e.chat_template, e.n_ctx_slot)
                            : parse_completion_request(body, e.vocab, e.n_ctx_slot);
    pr.task.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options_.timeout_s);
    pr.task.stream = pr.stream;
    auto task = std::make_shared<Task>(std::move(pr.task));
    if (!e.scheduler->submit(task))
        throw ApiError(503,
                       "the server is busy: every slot is in use and the queue is full (or "
                       "the server is shutting down); retry later",
                       "", "", "server_busy");

    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(started_at_) + "-" +
                           std::to_string(next_id_.fetch_add(1));
    const int64_t created = int64_t(std::time(nullptr));
    const std::string model = e.model_id;
    const std::string object = chat ? "chat.completion" : "text_completion";

    if (!pr.stream) {
        ++in_flight_;
        std::string text;
        TaskEvent done;
        for (;;) {
            auto ev = task->pop(std::chrono::milliseconds(1000));
            if (!ev) continue;  // the scheduler always ends a task (deadline, shutdown)
            if (ev->kind == TaskEvent::Kind::Text) {
                text += ev->text;
                continue;
            }
            done = std::move(*ev);
            break;
        }
        --in_flight_;
        if (done.finish == FinishReason::Error || done.finish == FinishReason::Cancelled)
            throw ApiError(done.status,
                           done.error.empty() ? "the request was cancelled" : done.error);
        json choice = {
            {"index", 0}, {"logprobs", nullptr}, {"finish_reason", openai_finish(done.finish)}};
        if (chat)
            choice["message"] = {{"role", "assistant"}, {"content", text}};
        else
            choice["text"] = text;
        send_json(res, 200,
                  {{"id", id},
                   {"object", object},
                   {"created", created},
                   {"model", model},
                   {"system_fingerprint", "llama-cxx"},
                   {"choices", json::array({choice})},
                   {"usage", usage_json(done)}});
        return;
    }

    // Streaming: server-sent events in OpenAI's chunk shape, ending with "data: [DONE]".
    const bool include_usage = pr.include_usage;
    auto chunk = [=](const json& delta_or_text, const json& finish) {
        json c = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
        if (chat)
            c["delta"] = delta_or_text;
        else
            c["text"] = delta_or_text;
        return json{{"id", id},
                    {"object", chat ? "chat.completion.chunk" : "text_completion"},
                    {"created", created},
                    {"model", model},
                    {"system_fingerprint", "llama-cxx"},
                    {"choices", json::array({c})}};
    };
    auto started = std::make_shared<bool>(false);
    ++in_flight_;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [=](size_t, httplib::DataSink& sink) -> bool {
            auto send = [&](const json& j) {
                const std::string s = "data: " + dump(j) + "\n\n";
                return sink.write(s.data(), s.size());
            };
            if (!*started) {
                *started = true;
                // OpenAI opens a chat stream with the role; it also tells a client at once
                // that the request was accepted.
                if (chat && !send(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr))) {
                    task->cancel();
                    return false;
                }
            }
            auto ev = task->pop(std::chrono::milliseconds(200));
            if (!ev) return true;  // called again; a dead client shows at the next write
            if (ev->kind == TaskEvent::Kind::Text) {
                const json piece = chat ? json{{"content", ev->text}} : json(ev->text);
                if (!send(chunk(piece, nullptr))) {
                    task->cancel();  // the client went away: free the slot now
                    return false;
                }
                return true;
            }
            if (ev->finish == FinishReason::Error || ev->finish == FinishReason::Cancelled) {
                send(ApiError(ev->status,
                              ev->error.empty() ? "the request was cancelled" : ev->error)
                         .to_json());
            } else {
                send(chunk(chat ? json::object() : json(""), openai_finish(ev->finish)));
                if (include_usage) {
                    json u = chunk(json::object(), nullptr);
                    u["choices"] = json::array();
                    u["usage"] = usage_json(*ev);
                    send(u);
                }
            }
            static const std::string kDone = "data: [DONE]\n\n";
            sink.write(kDone.data(), kDone.size());
            sink.done();
            return true;
        },
        [this, task](bool) {
            task->cancel();  // no-op when it finished; frees the slot when it did not
            --in_flight_;
        });
}

}  // namespace lcx::server
