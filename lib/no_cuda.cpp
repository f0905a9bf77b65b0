// Definitions used when reel is built without the CUDA backend.
#include "reel/backend.hpp"

#ifndef REEL_HAVE_CUDA
namespace reel {
int cuda_device_count() noexcept { return 0; }
}  // namespace reel
#endif
