// reel's CUDA memory: a caching allocator per device over cudaMalloc/cudaFree, reel's stream
// per device, and the DeviceMemory that Tensors use (allocate, and copies between host and
// devices on reel's stream, waited for before returning).
//
// Set REEL_CUDA_ALLOCATOR=uncached to hand every freed block straight back to the driver
// (for compute-sanitizer memcheck, which cannot see reuse inside a cache).
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cuda_check.hpp"
#include "cuda_memory.hpp"
#include "reel/backend.hpp"
#include "reel/cuda_backend.hpp"
#include "reel/tensor.hpp"

namespace reel::cuda_memory {

namespace {

class CudaRawMemory final : public RawMemory {
 public:
  explicit CudaRawMemory(int device) : device_(device) {}

  void* allocate(size_t bytes) override {
    cuda::DeviceGuard guard(device_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;  // the allocator empties its cache and retries
    }
    cuda::check(err, ("cudaMalloc(" + std::to_string(bytes) + " bytes) on cuda:" + std::to_string(device_)).c_str());
    return p;
  }

  void release(void* p, size_t) noexcept override {
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    (void)cudaSetDevice(device_);
    (void)cudaFree(p);  // errors here (a device already lost, process teardown) cannot be handled
    (void)cudaGetLastError();
    if (previous >= 0) (void)cudaSetDevice(previous);
  }

  // Freed blocks may still be read by queued work (reuse is stream-ordered): wait for the device.
  void release_all_prepare() override {
    cuda::DeviceGuard guard(device_);
    REEL_CUDA_CHECK(cudaDeviceSynchronize());
  }

 private:
  int device_;
};

struct DeviceState {
  CachingAllocator* allocator = nullptr;  // never deleted: tensors may outlive static destructors
  cudaStream_t stream = nullptr;
};

std::mutex states_mutex;
std::vector<DeviceState>& states() {
  static auto* s = new std::vector<DeviceState>();  // leaked on purpose, as the allocators
  return *s;
}

bool caching_enabled() {
  const char* v = std::getenv("REEL_CUDA_ALLOCATOR");
  return !(v && std::strcmp(v, "uncached") == 0);
}

DeviceState& state(int device) {
  static const int count = reel::cuda_device_count();  // devices do not come and go while we run
  if (device < 0 || device >= count)
    throw Error(StatusCode::invalid_argument, "CUDA device " + std::to_string(device) + " does not exist (" +
                                                  std::to_string(count) + " found)");
  std::lock_guard lock(states_mutex);
  auto& all = states();
  if (all.size() < size_t(count)) all.resize(size_t(count));
  DeviceState& s = all[size_t(device)];
  if (!s.stream) {
    cuda::DeviceGuard guard(device);
    cudaStream_t stream = nullptr;
    // cudaStreamDefault (blocking): ordered with the legacy default stream as well.
    REEL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamDefault));
    s.stream = stream;
  }
  if (!s.allocator) s.allocator = new CachingAllocator(std::make_unique<CudaRawMemory>(device), caching_enabled());
  return s;
}

class CudaMemory final : public DeviceMemory {
 public:
  std::shared_ptr<std::byte> allocate(Device device, size_t bytes) override {
    require(device.type == DeviceType::cuda, StatusCode::invalid_argument, "CUDA memory asked for " + device.str());
    return cuda_memory::allocate(device.index, bytes);
  }

  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override {
    if (bytes == 0) return;
    if (dst_device.type == DeviceType::cpu && src_device.type == DeviceType::cpu) {
      std::memcpy(dst, src, bytes);
      return;
    }
    const int device = dst_device.type == DeviceType::cuda ? dst_device.index : src_device.index;
    cudaStream_t s = stream(device);
    if (src_device.type == DeviceType::cuda && src_device.index != device) {  // between GPUs: src is ready
      cuda::DeviceGuard guard(src_device.index);
      REEL_CUDA_CHECK(cudaStreamSynchronize(stream(src_device.index)));
    }
    cuda::DeviceGuard guard(device);
    const std::string what = "cudaMemcpyAsync " + src_device.str() + " -> " + dst_device.str() + " of " +
                             std::to_string(bytes) + " bytes";
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s), what.c_str());
    // Host memory may be freed or read as soon as we return: wait for the copy.
    cuda::check(cudaStreamSynchronize(s), ("cudaStreamSynchronize after " + what).c_str());
  }

  std::optional<size_t> available_bytes(Device device) const override {
    if (device.type != DeviceType::cuda) return std::nullopt;
    cuda::DeviceGuard guard(device.index);
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
      (void)cudaGetLastError();
      return std::nullopt;
    }
    return free + size_t(allocator(device.index).stats().cached_bytes);
  }
};

}  // namespace

cudaStream_t stream(int device) { return state(device).stream; }

CachingAllocator& allocator(int device) { return *state(device).allocator; }

std::shared_ptr<std::byte> allocate(int device, size_t bytes) {
  CachingAllocator* a = state(device).allocator;
  auto* p = static_cast<std::byte*>(a->allocate(bytes));
  try {
    return std::shared_ptr<std::byte>(p, [a](std::byte* q) { a->free(q); });
  } catch (...) {  // the control block could not be allocated
    a->free(p);
    throw Error(StatusCode::out_of_memory, "out of host memory while allocating a CUDA buffer");
  }
}

void ensure_registered() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (reel::cuda_device_count() == 0) return;
    static auto* memory = new CudaMemory();
    register_device_memory(DeviceType::cuda, memory);
  });
}

}  // namespace reel::cuda_memory

namespace reel {

namespace {
CachingAllocator& stats_allocator(int device) {
  cuda_memory::ensure_registered();
  return cuda_memory::allocator(device);
}
}  // namespace

CudaMemoryStats cuda_memory_stats(int device) {
  const CachingAllocatorStats s = stats_allocator(device).stats();
  CudaMemoryStats out;
  out.in_use_bytes = s.in_use_bytes;
  out.peak_in_use_bytes = s.peak_in_use_bytes;
  out.cached_bytes = s.cached_bytes;
  out.reserved_bytes = s.reserved_bytes;
  out.peak_reserved_bytes = s.peak_reserved_bytes;
  out.device_allocations = s.source_allocations;
  out.cache_hits = s.cache_hits;
  return out;
}

void reset_cuda_peak_memory(int device) { stats_allocator(device).reset_peak(); }

void release_cached_cuda_memory(int device) { stats_allocator(device).release_cached(); }

}  // namespace reel
