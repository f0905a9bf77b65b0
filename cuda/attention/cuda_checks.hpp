// Internal: checks the CUDA attention kernels share in supports() and run(): device present,
// compute capability, code in this build for the device, device pointers, alignment; CUDA
// errors turned into reel::Error; and the ordering of a caller's stream with reel's stream.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "attention/kernel_image.hpp"
#include "cuda_check.hpp"
#include "reel/attention.hpp"

namespace reel::attn::cuda_checks {

// Compute capability as major*10 + minor, or 0 when the device does not exist.
int compute_capability(int device);

// "yes", or why not: no such device, capability below min_cc (e.g. 80 for sm_80).
Support device_ok(const AttentionParams& p, int min_cc);

// "yes" when this build holds code for p.device_index, as `probe` (kernel_image.hpp) finds
// it; else "this build has no code for sm_120 (CUDA device 0; built for sm_80, sm_90): ...".
// Run once per (probe, device) and cached: supports() is called for every op. Call after
// device_ok().
Support kernel_image_ok(const AttentionParams& p, kernel_image::ProbeFn probe);

// "yes" when a kernel needing `bytes` of dynamic shared memory per block can be launched on
// p.device_index (its opt-in limit: 227 KiB on sm_90, 163 KiB on sm_80, 99 KiB on sm_86/89).
Support shared_memory_ok(const AttentionParams& p, int bytes);

// Whether q, k, v, out (and lse when set) are device (or managed) memory of p.device_index.
Support pointers_on_device(const AttentionParams& p);

// All four base pointers aligned to `bytes` and every stride a multiple of `elements`.
Support aligned(const AttentionParams& p, int bytes, int64_t elements);

// CUDA errors as reel::Error and the current-device scope: the backend's (cuda/cuda_check.hpp).
using reel::cuda::check;
using reel::cuda::DeviceGuard;

// Orders the work run() queues on p.stream with reel's stream of p.device_index
// (cuda/cuda_memory.hpp), the stream on which reel's caching allocator orders the reuse of
// freed blocks and on which reel's backend and Tensor copies run. Construct it in run() after
// the DeviceGuard, before queueing anything: p.stream then waits for the work already queued on
// reel's stream (q/k/v still being written, out's block still being read by its previous
// owner). finish() (or the destructor, also when run() throws) makes reel's stream wait for what
// was queued on p.stream meanwhile, so the caller may free q/k/v/out as soon as run() returns.
// Does nothing for a NULL or legacy stream (reel's stream is a blocking stream: the legacy
// default stream is ordered with it both ways), for reel's stream itself, and while p.stream is
// being captured into a CUDA graph (the caller orders the graph's launches).
class ReelStreamOrder {
 public:
  explicit ReelStreamOrder(const AttentionParams& p);
  ~ReelStreamOrder();
  ReelStreamOrder(const ReelStreamOrder&) = delete;
  ReelStreamOrder& operator=(const ReelStreamOrder&) = delete;
  // Throws Error(internal) when the ordering cannot be queued. Idempotent.
  void finish();

 private:
  int device_ = 0;
  cudaStream_t caller_ = nullptr;  // nullptr: nothing to order
  cudaStream_t reel_ = nullptr;
};

}  // namespace reel::attn::cuda_checks
