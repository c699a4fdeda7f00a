// The HTTP front end: OpenAI-compatible routes over a Scheduler, plus llama.cpp-style
// extras. It starts listening before the model is loaded (so /health can answer 503
// while loading) and serves requests once set_engine() hands it the loaded model.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/chat_template.h"
#include "server/scheduler.h"
#include "server/server_options.h"
#include "vocab/vocab.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace lcx::server {

// What the routes need of the loaded model.
struct Engine {
    std::string model_id;
    Vocab vocab;
    ChatTemplate chat_template{ChatFormat::Plain};
    Scheduler* scheduler = nullptr;
    int64_t n_ctx_slot = 0;
    int64_t n_ctx_train = 0;
    int64_t n_embd = 0;
};

class HttpServer {
  public:
    explicit HttpServer(const ServerOptions& options);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and starts serving on a background thread; returns the bound port. Throws
    // lcx::Error when the address cannot be bound.
    int start(int32_t n_parallel, int32_t max_queue);
    // From now on the model routes are served (before: 503).
    void set_engine(std::unique_ptr<Engine> engine);
    // Stops accepting connections and joins the serving threads. Idempotent.
    void stop();

  private:
    void install_routes();
    void handle_generation(const httplib::Request& req, httplib::Response& res, bool chat);
    void handle_embeddings(const httplib::Request& req, httplib::Response& res);
    void handle_tokenize(const httplib::Request& req, httplib::Response& res);
    void handle_detokenize(const httplib::Request& req, httplib::Response& res);
    void handle_models(httplib::Response& res);
    void handle_metrics(httplib::Response& res);
    const Engine& engine() const;
    void count_response(const httplib::Request& req, const httplib::Response& res);

    ServerOptions options_;
    std::unique_ptr<httplib::Server> http_;
    std::thread thread_;
    int listen_fd_ = -1;  // the listening socket, seen by the socket-options hook
    std::unique_ptr<Engine> engine_;
    std::atomic<bool> ready_{false};
    std::atomic<uint64_t> next_id_{1};
    int64_t started_at_ = 0;

    std::mutex metrics_mutex_;
    std::map<std::string, std::map<int, uint64_t>> responses_;  // route -> status -> count
    std::atomic<int64_t> in_flight_{0};
};

}  // namespace lcx::server
