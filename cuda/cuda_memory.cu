// A minimal CUDA DeviceMemory for Tensors: cudaMalloc / cudaFree per tensor and cudaMemcpy
// (cudaMemcpyDefault: unified addressing finds the direction). Synchronous and uncached; a
// caching, stream-ordered allocator can replace it by registering its own DeviceMemory.
#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "cuda_memory.hpp"
#include "reel/backend.hpp"
#include "reel/tensor.hpp"

namespace reel::cuda_memory {

namespace {

void check(cudaError_t err, const std::string& what) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();
  throw Error(err == cudaErrorMemoryAllocation ? StatusCode::out_of_memory : StatusCode::internal,
              what + ": " + cudaGetErrorString(err));
}

class CurrentDevice {
 public:
  explicit CurrentDevice(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  }
  ~CurrentDevice() {
    if (previous_ >= 0) (void)cudaSetDevice(previous_);
  }

 private:
  int previous_ = -1;
};

class CudaMemory final : public DeviceMemory {
 public:
  std::shared_ptr<std::byte> allocate(Device device, size_t bytes) override {
    require(device.type == DeviceType::cuda, StatusCode::invalid_argument, "CUDA memory asked for " + device.str());
    CurrentDevice guard(device.index);
    void* p = nullptr;
    check(cudaMalloc(&p, bytes == 0 ? 1 : bytes),
          "cudaMalloc of " + std::to_string(bytes) + " bytes on " + device.str());
    const int index = device.index;
    return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [index](std::byte* q) {
      int previous = -1;
      (void)cudaGetDevice(&previous);
      (void)cudaSetDevice(index);
      (void)cudaFree(q);
      if (previous >= 0) (void)cudaSetDevice(previous);
    });
  }

  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override {
    if (bytes == 0) return;
    const Device on = dst_device.type == DeviceType::cuda ? dst_device : src_device;
    CurrentDevice guard(on.index);
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault),
          "cudaMemcpy " + src_device.str() + " -> " + dst_device.str() + " of " + std::to_string(bytes) + " bytes");
  }
};

}  // namespace

void ensure_registered() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (reel::cuda_device_count() == 0) return;
    try {
      (void)device_memory(DeviceType::cuda);
      return;  // someone (the CUDA backend) registered theirs already: keep it
    } catch (const Error&) {
    }
    static CudaMemory memory;
    register_device_memory(DeviceType::cuda, &memory);
  });
}

}  // namespace reel::cuda_memory
