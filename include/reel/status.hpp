// reel's one error model.
//
// Inside C++ every fallible call throws reel::Error, which carries a StatusCode and a message
// that names the cause (file, tensor, field, shape). The C API (capi/reel.h) catches it at the
// boundary and turns it into a reel_status plus a thread-local message. Nothing in the library
// aborts on bad input; asserts guard internal invariants only.
//
//   try {
//     auto store = reel::WeightStore::open("model.safetensors");
//   } catch (const reel::Error& e) {
//     if (e.code() == reel::StatusCode::bad_format) std::cerr << e.what() << "\n";
//   }
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "reel/export.hpp"

namespace reel {

// Values are fixed: the C API exposes the same numbers as reel_status.
enum class StatusCode : int {
  ok = 0,
  invalid_argument = 1,  // a NULL, a wrong shape, an impossible size, a bad option
  not_found = 2,         // a file, tensor, kernel, sampler or config entry that does not exist
  io_error = 3,          // the operating system refused a read or a write
  bad_format = 4,        // a file that is truncated, hostile or not what it claims to be
  unsupported = 5,       // valid request the build or backend cannot do (say which and why)
  out_of_memory = 6,
  cancelled = 7,         // a progress callback or observer asked to stop
  internal = 8,          // a bug in reel: please report it
  numerical_error = 9,   // NaN or infinity appeared in a stage's output (corrupt weights, overflow)
};

REEL_API const char* status_name(StatusCode code) noexcept;

class REEL_API Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  StatusCode code() const noexcept { return code_; }

 private:
  StatusCode code_;
};

// Diagnostics that are not errors: warnings from the libraries reel drives (FFmpeg's own
// messages about a damaged or unusual video). Off by default: nothing reaches stderr from
// inside reel. A handler receives each message (one line, no newline) on the thread that
// produced it; nullptr turns them off again. Thread-safe.
//   reel::set_log_handler([](const char* m, void*) { std::fprintf(stderr, "reel: %s\n", m); });
using LogHandler = void (*)(const char* message, void* user);
REEL_API void set_log_handler(LogHandler handler, void* user = nullptr);

// Throws Error(code, message) when the condition is false. For checks on user input.
inline void require(bool condition, StatusCode code, std::string_view message) {
  if (!condition) throw Error(code, std::string(message));
}

}  // namespace reel
