// The CUDA backend: every op of reel/backend.hpp on one NVIDIA GPU (cuBLASLt GEMMs, cuDNN
// convolutions, reel's own kernels for the rest), the stream it runs on, the device selection
// helpers, and the statistics of the caching GPU allocator. This header needs no CUDA headers;
// when reel is built without CUDA the factory throws Error(unsupported).
//
//   auto gpu = reel::make_cuda_backend({.device = 0});
//   reel::Tensor x = host_x.to(gpu->device());                 // cuda:0
//   reel::Tensor y = reel::ops::linear(*gpu, x, w_gpu, &b_gpu);
//   reel::Tensor back = y.to(reel::Device::cpu());               // waits for the GPU
//   reel::CudaMemoryStats m = reel::cuda_memory_stats(0);        // m.peak_in_use_bytes
//
//   auto be = reel::make_backend(reel::Device::parse("cuda:1"));  // or "cpu"
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>

#include "reel/backend.hpp"
#include "reel/export.hpp"

namespace reel {

struct CudaBackendOptions {
  int device = 0;  // CUDA device ordinal
  // A cudaStream_t the caller owns and keeps alive while the backend lives; null: reel's own
  // stream for the device (the one the caching allocator orders its memory on). A caller
  // stream is ordered against reel's stream around every op (two events), so memory handed
  // between them stays safe.
  void* stream = nullptr;
  // f32 GEMMs and convolutions on TF32 tensor cores (10-bit mantissa products). Off: exact
  // f32 FMA arithmetic, as the CPU backend.
  bool allow_tf32 = false;
};

// Throws unsupported (built without CUDA, or no GPU/driver) or invalid_argument (no such device).
REEL_API std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

// The CPU backend (cpu_threads, 0 = all hardware threads) or the CUDA backend of that device.
REEL_API std::unique_ptr<Backend> make_backend(Device device, int cpu_threads = 0);
// "cpu", "cuda" or "cuda:N" (Device::parse).
REEL_API std::unique_ptr<Backend> make_backend(std::string_view device, int cpu_threads = 0);

// The cudaStream_t a CUDA backend runs its ops on (pass it to attention params so kernels
// queue behind the ops), or null for any other backend.
REEL_API void* cuda_stream(const Backend& backend) noexcept;

// GPU memory held by reel's caching allocator on one device. Bytes are block sizes (requests
// rounded up to their size class, at most 12.5% more).
struct CudaMemoryStats {
  uint64_t in_use_bytes = 0;         // live tensors and workspaces
  uint64_t peak_in_use_bytes = 0;    // maximum since start or reset_cuda_peak_memory()
  uint64_t cached_bytes = 0;         // freed blocks kept for reuse
  uint64_t reserved_bytes = 0;       // in use + cached: what cudaMalloc has handed out
  uint64_t peak_reserved_bytes = 0;  // what the process held at most (what nvidia-smi shows, less the context)
  uint64_t device_allocations = 0;   // cudaMalloc calls
  uint64_t cache_hits = 0;           // allocations served from the cache
};

// Throws unsupported when built without CUDA, invalid_argument for a device that does not exist.
REEL_API CudaMemoryStats cuda_memory_stats(int device = 0);
REEL_API void reset_cuda_peak_memory(int device = 0);
// Waits for the device, then hands every cached block back to the driver.
REEL_API void release_cached_cuda_memory(int device = 0);

}  // namespace reel
