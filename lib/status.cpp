#include "reel/status.hpp"

#include <mutex>

#include "log.hpp"

namespace reel {

namespace {
std::mutex log_mutex;
LogHandler log_handler = nullptr;
void* log_user = nullptr;
}  // namespace

void set_log_handler(LogHandler handler, void* user) {
  std::lock_guard<std::mutex> lock(log_mutex);
  log_handler = handler;
  log_user = user;
}

void log_message(const std::string& message) {
  std::lock_guard<std::mutex> lock(log_mutex);
  if (log_handler) log_handler(message.c_str(), log_user);
}

const char* status_name(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::invalid_argument: return "invalid argument";
    case StatusCode::not_found: return "not found";
    case StatusCode::io_error: return "I/O error";
    case StatusCode::bad_format: return "bad format";
    case StatusCode::unsupported: return "unsupported";
    case StatusCode::out_of_memory: return "out of memory";
    case StatusCode::cancelled: return "cancelled";
    case StatusCode::internal: return "internal error";
    case StatusCode::numerical_error: return "numerical error";
  }
  return "unknown status";
}

}  // namespace reel
