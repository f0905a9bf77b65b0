#include "reel/status.hpp"

namespace reel {

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
