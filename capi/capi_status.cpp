// C API: version, status names, the thread-local last error, interned strings.
#include <mutex>
#include <set>

#include "capi_internal.hpp"
#include "reel/backend.hpp"

namespace reel::capi {

namespace {
thread_local std::string last_error;
thread_local const char* last_error_fallback = nullptr;  // when even the message could not be stored
}  // namespace

reel_status fail(reel_status status, const char* function, const std::string& message) noexcept {
  try {
    last_error = std::string(function) + ": " + message;
    last_error_fallback = nullptr;
  } catch (...) {
    last_error_fallback = "out of memory while recording an error";
  }
  return status;
}

const char* intern(const std::string& text) {
  static std::mutex mutex;
  static std::set<std::string>* strings = new std::set<std::string>();  // never freed: pointers stay valid
  std::lock_guard<std::mutex> lock(mutex);
  return strings->insert(text).first->c_str();
}

}  // namespace reel::capi

extern "C" {

uint32_t reel_version_number(void) { return REEL_VERSION_NUMBER; }

int32_t reel_cuda_device_count(void) { return reel::cuda_device_count(); }

const char* reel_version_string(void) {
#define REEL_STR2(x) #x
#define REEL_STR(x) REEL_STR2(x)
  return REEL_STR(REEL_VERSION_MAJOR) "." REEL_STR(REEL_VERSION_MINOR) "." REEL_STR(REEL_VERSION_PATCH);
#undef REEL_STR
#undef REEL_STR2
}

void reel_set_log_callback(reel_log_fn fn, void* user) { reel::set_log_handler(fn, user); }

const char* reel_status_string(reel_status status) {
  switch (status) {
    case REEL_OK: return "ok";
    case REEL_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case REEL_ERROR_NOT_FOUND: return "not found";
    case REEL_ERROR_IO: return "input/output error";
    case REEL_ERROR_BAD_FORMAT: return "bad format";
    case REEL_ERROR_UNSUPPORTED: return "unsupported";
    case REEL_ERROR_OUT_OF_MEMORY: return "out of memory";
    case REEL_ERROR_CANCELLED: return "cancelled";
    case REEL_ERROR_INTERNAL: return "internal error";
    case REEL_ERROR_NUMERICAL: return "numerical error";
  }
  return "unknown status";
}

const char* reel_last_error(void) {
  if (reel::capi::last_error_fallback) return reel::capi::last_error_fallback;
  return reel::capi::last_error.c_str();
}

}  // extern "C"
