// An error a request handler reports to the client: HTTP status plus OpenAI's error
// object ({"error":{"message","type","param","code"}}), so official clients surface the
// message and the offending field instead of a generic failure.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace lcx::server {

class ApiError : public std::runtime_error {
  public:
    ApiError(int status, std::string message, std::string param = {}, std::string type = {},
             std::string code = {})
        : std::runtime_error(message),
          status_(status),
          param_(std::move(param)),
          type_(type.empty() ? default_type(status) : std::move(type)),
          code_(std::move(code)) {}

    int status() const { return status_; }
    const std::string& param() const { return param_; }
    const std::string& type() const { return type_; }
    const std::string& code() const { return code_; }

    nlohmann::json to_json() const {
        nlohmann::json e = {{"message", what()},
                            {"type", type_},
                            {"param", param_.empty() ? nlohmann::json() : nlohmann::json(param_)},
                            {"code", code_.empty() ? nlohmann::json() : nlohmann::json(code_)}};
        return {{"error", std::move(e)}};
    }

    // OpenAI's error types by status.
    static std::string default_type(int status) {
        switch (status) {
            case 401:
                return "authentication_error";
            case 404:
                return "not_found_error";
            case 413:
                return "invalid_request_error";
            case 429:
            case 503:
                return "server_unavailable_error";
            case 501:
                return "not_implemented_error";
            default:
                return status >= 500 ? "server_error" : "invalid_request_error";
        }
    }

  private:
    int status_;
    std::string param_, type_, code_;
};

// A bad field in a request body: 400 naming the field.
inline ApiError invalid_field(const std::string& param, const std::string& message) {
    return ApiError(400, message, param, "invalid_request_error", "invalid_value");
}

}  // namespace lcx::server
