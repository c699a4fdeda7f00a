// Settings of `llama-cxx serve` that concern HTTP (the engine's are SchedulerParams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lcx::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;      // 0: any free port (the chosen one is logged)
    std::string api_key;  // non-empty: every route but /health needs "Authorization: Bearer KEY"
    size_t max_body_bytes = size_t(1) << 20;
    int timeout_s = 600;   // socket read/write timeout, and the limit of one request's generation
    int http_threads = 0;  // 0: enough for every slot and queued request plus a few spare
};

}  // namespace lcx::server
