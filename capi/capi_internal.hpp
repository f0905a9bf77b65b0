// Internal to the C API: the objects behind the opaque handles, the thread-local last error,
// and the guard that turns every C++ exception into a reel_status at the boundary.
#pragma once
#include <optional>
#include <cstddef>
#include <new>
#include <string>
#include <vector>

#include "reel.h"
#include "reel/distributed.hpp"
#include "reel/pipeline.hpp"
#include "reel/status.hpp"

struct reel_communicator {
  std::shared_ptr<reel::Communicator> comm;
};

struct reel_model {
  reel::Pipeline pipeline;
  std::string description;
};

struct reel_video {
  reel::Video video;
  std::vector<float> frames_float;  // empty unless asked for
  std::vector<std::string> notices;
};

namespace reel::capi {

// Records the message of a failed call on this thread; never throws.
reel_status fail(reel_status status, const char* function, const std::string& message) noexcept;

// Runs fn; Error → its code, bad_alloc → out of memory, anything else → internal. The message
// starts with the C function's name.
template <class F>
reel_status guarded(const char* function, F&& fn) noexcept {
  try {
    fn();
    return REEL_OK;
  } catch (const Error& e) {
    return fail(static_cast<reel_status>(e.code()), function, e.what());
  } catch (const std::bad_alloc&) {
    return fail(REEL_ERROR_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::exception& e) {
    return fail(REEL_ERROR_INTERNAL, function, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(REEL_ERROR_INTERNAL, function, "internal error: unknown exception");
  }
}

// invalid_argument "<what> is NULL" when p is null.
inline void require_pointer(const void* p, const char* what) {
  if (!p) throw Error(StatusCode::invalid_argument, std::string(what) + " is NULL");
}

// struct_size must cover every field this library reads (the version-1 layout); a larger
// size (a newer header) is accepted.
inline void require_struct_size(uint32_t struct_size, size_t needed, const char* name) {
  if (struct_size < needed)
    throw Error(StatusCode::invalid_argument,
                std::string(name) + ".struct_size is " + std::to_string(struct_size) + ", smaller than the " +
                    std::to_string(needed) + " bytes this library reads: call " + name + "_init first");
}

// A NUL-terminated copy that lives as long as the process (for names handed out by listings).
const char* intern(const std::string& text);

// The request reel_generate_params describes, every pointer and size checked (capi_generate.cpp;
// also the window settings of a reel_session). A first frame for a model that takes none is
// refused before the image is read.
GenerateRequest generate_request(const reel_generate_params& params, const reel_model* model);

// The C progress callback as a GenerateObserver (no callback: never cancels).
class ProgressObserver final : public GenerateObserver {
 public:
  ProgressObserver(reel_progress_fn fn, void* user) : fn_(fn), user_(user) {}
  bool on_progress(const Progress& p) override;
  // Kept for the on_progress call of the same step, which hands it to the callback.
  bool on_preview(const Preview& p) override {
    preview_ = p;
    return true;
  }

 private:
  reel_progress_fn fn_;
  void* user_;
  std::optional<Preview> preview_;
};

}  // namespace reel::capi
