// Internal: checks the CUDA attention kernels share in supports() and run(): device present,
// compute capability, device pointers, alignment; and CUDA errors turned into reel::Error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "reel/attention.hpp"

namespace reel::attn::cuda_checks {

// Compute capability as major*10 + minor, or 0 when the device does not exist.
int compute_capability(int device);

// "yes", or why not: no such device, capability below min_cc (e.g. 80 for sm_80).
Support device_ok(const AttentionParams& p, int min_cc);

// "yes" when a kernel needing `bytes` of dynamic shared memory per block can be launched on
// p.device_index (its opt-in limit: 227 KiB on sm_90, 163 KiB on sm_80, 99 KiB on sm_86/89).
Support shared_memory_ok(const AttentionParams& p, int bytes);

// Whether q, k, v, out (and lse when set) are device (or managed) memory of p.device_index.
Support pointers_on_device(const AttentionParams& p);

// All four base pointers aligned to `bytes` and every stride a multiple of `elements`.
Support aligned(const AttentionParams& p, int bytes, int64_t elements);

// Throws Error(internal) naming `what` when err is not cudaSuccess.
void check(cudaError_t err, const char* what);

// Makes p.device_index current for the scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace reel::attn::cuda_checks
