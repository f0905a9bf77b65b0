// Internal: reel's CUDA memory. Per device: a caching allocator over cudaMalloc (size-class
// free lists, lib/memory/caching_allocator.hpp) and one stream, "reel's stream", that the
// allocator orders its memory on. It is a blocking stream, so work on the legacy default
// stream (attention kernels given a null stream) is ordered with it too. Registered as the
// DeviceMemory of DeviceType::cuda, so Tensor::empty/to(Device::cuda(i)) use it.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>

#include "memory/caching_allocator.hpp"

namespace reel::cuda_memory {

// Registers the caching CUDA memory with reel::register_device_memory once, when a GPU is
// present (Tensor's device_memory() calls this on first use; so do the backend and the
// attention registry). Harmless to call again.
void ensure_registered();

// reel's stream of `device`, created on first use and kept for the life of the process.
// Throws invalid_argument for a device that does not exist.
cudaStream_t stream(int device);

// The allocator of `device` (created on first use). Throws invalid_argument for a bad device.
CachingAllocator& allocator(int device);

// `bytes` of device memory from the allocator; the block goes back to the cache when the last
// owner drops it. Reuse is ordered on stream(device).
std::shared_ptr<std::byte> allocate(int device, size_t bytes);

}  // namespace reel::cuda_memory
