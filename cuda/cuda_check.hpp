// Internal: CUDA runtime errors as reel::Error, and a scope that makes a device current.
// Every CUDA call in cuda/ goes through check() (REEL_CUDA_CHECK names the call itself), so a
// failure names the call and the driver's message and never aborts.
#pragma once
#include <cuda_runtime.h>

namespace reel::cuda {

// Throws Error(out_of_memory) for allocation failures, Error(unsupported) when there is no
// usable device or driver, Error(internal) otherwise; the message names `call` and the CUDA
// error. Clears the runtime's last-error state first.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call);

inline void check(cudaError_t err, const char* call) {
  if (err != cudaSuccess) throw_cuda_error(err, call);
}

// After a kernel launch: throws (naming the kernel) when the launch failed.
void check_launch(const char* kernel);

// Makes `device` current for the scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace reel::cuda

#define REEL_CUDA_CHECK(call) ::reel::cuda::check((call), #call)
