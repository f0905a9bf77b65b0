// CUDA device discovery. Safe to call on machines without a GPU or driver.
#include <cuda_runtime.h>

#include "reel/backend.hpp"

namespace reel {

int cuda_device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

}  // namespace reel
