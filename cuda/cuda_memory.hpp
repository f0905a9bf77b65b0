// Internal: the minimal CUDA DeviceMemory (cudaMalloc / cudaFree / cudaMemcpy).
#pragma once

namespace reel::cuda_memory {

// Registers it with reel::register_device_memory(DeviceType::cuda, ...) once, when a GPU is
// present, so Tensor::empty(..., Device::cuda()) and Tensor::to(Device::cuda()) work.
// Called by the CUDA attention registration; harmless to call again.
void ensure_registered();

}  // namespace reel::cuda_memory
