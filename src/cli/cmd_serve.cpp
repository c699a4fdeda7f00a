// `llama-cxx serve`: the OpenAI-compatible HTTP server. Startup order matters: the
// socket is bound first, so /health answers 503 while the model loads; SIGINT/SIGTERM
// are taken by one thread (sigwait) so shutdown runs as ordinary code, not in a signal
// handler: stop taking requests, let running ones finish briefly, end the rest, exit 0.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "common/log.h"
#include "runtime/chat_template.h"
#include "server/http_server.h"
#include "server/scheduler.h"

namespace lcx::cli {

namespace {

struct ServeArgs {
    ModelOptions model;
    server::ServerOptions http;
    int32_t n_parallel = 1;
    int32_t max_queue = 64;
    std::string alias;
    std::string chat_template;
    double shutdown_grace_s = 5.0;
};

// Waits for SIGINT or SIGTERM on its own thread; the signals are blocked everywhere else.
class SignalWaiter {
  public:
    SignalWaiter() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // inherited by every thread started later
        thread_ = std::thread([this] {
            int sig = 0;
            sigwait(&set_, &sig);
            {
                std::lock_guard lock(mutex_);
                signal_ = sig;
            }
            cv_.notify_all();
        });
        thread_.detach();  // it may still be waiting at exit; it owns nothing
    }
    int wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return signal_ != 0; });
        return signal_;
    }

  private:
    sigset_t set_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable cv_;
    int signal_ = 0;
};

void run_serve(const ServeArgs& a) {
    // A client that disconnects mid-write must not kill the process.
    signal(SIGPIPE, SIG_IGN);
    check(a.n_parallel >= 1 && a.n_parallel <= 256, "--parallel must be between 1 and 256");
    check(a.max_queue >= 0, "--queue-size must not be negative");
    check(a.http.timeout_s >= 1, "--timeout must be at least 1 second");
    check(a.model.n_ctx >= 0, "the context size (-c) must not be negative");
    static SignalWaiter signals;  // before any thread starts

    server::HttpServer http(a.http);
    const int port = http.start(a.n_parallel, a.max_queue);
    log::info("server listening on http://%s:%d", a.http.host.c_str(), port);

    // One context holds every slot's sequence: -c is per slot.
    LoadedModel lm = load_model(a.model, /*allow_bundled=*/true, 4096);
    const int64_t n_ctx_slot = lm.ctx->n_ctx();
    ContextParams cp;
    cp.n_ctx = n_ctx_slot * a.n_parallel;
    cp.n_batch = a.model.n_batch;
    cp.type_k = lm.ctx->kv_cache().type_k();
    cp.type_v = lm.ctx->kv_cache().type_v();
    lm.ctx.reset();
    auto ctx = std::make_unique<Context>(lm.model, *lm.backend, cp);

    server::SchedulerParams sp;
    sp.n_parallel = a.n_parallel;
    sp.n_ctx_slot = n_ctx_slot;
    sp.max_queue = a.max_queue;
    auto scheduler = std::make_unique<server::Scheduler>(*ctx, lm.vocab, sp);

    auto engine = std::make_unique<server::Engine>();
    engine->vocab = lm.vocab;
    engine->scheduler = scheduler.get();
    engine->n_ctx_slot = n_ctx_slot;
    engine->n_ctx_train = lm.model->hparams().n_ctx_train;
    engine->n_embd = lm.model->hparams().n_embd;
    engine->chat_template =
        a.chat_template.empty()
            ? ChatTemplate::detect(
                  lm.model->file().get_string("tokenizer.chat_template").value_or(""))
            : ChatTemplate::from_name(a.chat_template);
    engine->model_id = !a.alias.empty() ? a.alias
                       : lm.bundled     ? std::string("stories260K")
                                        : std::filesystem::path(a.model.model_path).stem().string();
    log::info("model %s ready: %d slot(s) of %lld tokens, chat template %s",
              engine->model_id.c_str(), a.n_parallel, static_cast<long long>(n_ctx_slot),
              std::string(engine->chat_template.name()).c_str());
    http.set_engine(std::move(engine));

    const int sig = signals.wait();
    log::info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    scheduler->stop(std::chrono::milliseconds(int64_t(a.shutdown_grace_s * 1000)));
    http.stop();
    log::info("server stopped");
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto args = std::make_shared<ServeArgs>();
    auto* cmd = app.add_subcommand(
        "serve", "OpenAI-compatible HTTP server (without -m: the bundled stories260K model)");
    add_model_options(cmd, args->model, /*bundled_default=*/true);
    cmd->add_option("--host", args->http.host, "address to listen on (default: 127.0.0.1)");
    cmd->add_option("--port", args->http.port, "port, 0 = any free one (default: 8080)");
    cmd->add_option("--np,--parallel", args->n_parallel,
                    "slots: requests decoded together; -c is per slot (default: 1)");
    cmd->add_option("--queue-size", args->max_queue,
                    "requests that may wait for a slot before 503 (default: 64)");
    cmd->add_option("--api-key", args->http.api_key,
                    "require 'Authorization: Bearer KEY' (all routes but /health)");
    cmd->add_option("--max-body", args->http.max_body_bytes,
                    "largest request body in bytes (default: 1048576)");
    cmd->add_option("--timeout", args->http.timeout_s,
                    "seconds a request may take, and socket read/write timeout (default: 600)");
    cmd->add_option("--http-threads", args->http.http_threads,
                    "HTTP worker threads (default: parallel + queue size + 8)");
    cmd->add_option("--alias", args->alias, "model id to report (default: the file name)");
    cmd->add_option(
        "--chat-template", args->chat_template,
        "chat format: " + ChatTemplate::known_names() + " (default: detected from the model)");
    cmd->add_option("--shutdown-grace", args->shutdown_grace_s,
                    "seconds running requests may finish after SIGINT/SIGTERM (default: 5)");
    cmd->callback([args] { run_serve(*args); });
}

}  // namespace lcx::cli
