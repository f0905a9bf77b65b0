// Shared device/pointer/alignment checks of the CUDA attention kernels.
#include "attention/cuda_checks.hpp"

#include <mutex>
#include <vector>

namespace reel::attn::cuda_checks {

int compute_capability(int device) {
  static std::mutex mutex;
  static std::vector<int> cache;  // −1: not asked yet
  std::lock_guard lock(mutex);
  if (device < 0 || device >= reel::cuda_device_count()) return 0;
  if (cache.size() <= size_t(device)) cache.resize(size_t(device) + 1, -1);
  if (cache[size_t(device)] < 0) {
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      (void)cudaGetLastError();
      major = minor = 0;
    }
    cache[size_t(device)] = major * 10 + minor;
  }
  return cache[size_t(device)];
}

Support device_ok(const AttentionParams& p, int min_cc) {
  const int count = reel::cuda_device_count();
  if (count == 0) return Support::no("no CUDA device is available");
  if (p.device_index >= count)
    return Support::no("CUDA device " + std::to_string(p.device_index) + " does not exist (" +
                       std::to_string(count) + " found)");
  const int cc = compute_capability(p.device_index);
  if (cc < min_cc)
    return Support::no("needs compute capability " + std::to_string(min_cc / 10) + "." + std::to_string(min_cc % 10) +
                       "+, device " + std::to_string(p.device_index) + " has " + std::to_string(cc / 10) + "." +
                       std::to_string(cc % 10));
  return Support::yes();
}

Support shared_memory_ok(const AttentionParams& p, int bytes) {
  int limit = 0;
  if (cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, p.device_index) != cudaSuccess) {
    (void)cudaGetLastError();
    return Support::no("cannot read the shared memory limit of CUDA device " + std::to_string(p.device_index));
  }
  if (limit < bytes)
    return Support::no("needs " + std::to_string(bytes) + " bytes of shared memory per block, CUDA device " +
                       std::to_string(p.device_index) + " allows " + std::to_string(limit));
  return Support::yes();
}

Support pointers_on_device(const AttentionParams& p) {
  const std::pair<const char*, const void*> ptrs[] = {
      {"q", p.q}, {"k", p.k}, {"v", p.v}, {"out", p.out}, {"lse", p.lse}};
  for (auto [name, ptr] : ptrs) {
    if (!ptr) continue;
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
      (void)cudaGetLastError();
      return Support::no(std::string(name) + " is not CUDA memory");
    }
    const bool device_mem = attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
    if (!device_mem) return Support::no(std::string(name) + " is not device memory");
    if (attr.type == cudaMemoryTypeDevice && attr.device != p.device_index)
      return Support::no(std::string(name) + " is on CUDA device " + std::to_string(attr.device) + ", not " +
                         std::to_string(p.device_index));
  }
  return Support::yes();
}

Support aligned(const AttentionParams& p, int bytes, int64_t elements) {
  const std::pair<const char*, const void*> ptrs[] = {{"q", p.q}, {"k", p.k}, {"v", p.v}, {"out", p.out}};
  for (auto [name, ptr] : ptrs)
    if (reinterpret_cast<uintptr_t>(ptr) % uintptr_t(bytes) != 0)
      return Support::no(std::string(name) + " is not " + std::to_string(bytes) + "-byte aligned");
  const int64_t strides[] = {p.q_batch_stride, p.q_row_stride, p.q_head_stride,   p.k_batch_stride,
                             p.k_row_stride,   p.k_head_stride, p.v_batch_stride,  p.v_row_stride,
                             p.v_head_stride,  p.out_batch_stride, p.out_row_stride, p.out_head_stride};
  for (int64_t s : strides)
    if (s % elements != 0)
      return Support::no("every stride must be a multiple of " + std::to_string(elements) + " elements");
  return Support::yes();
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error(err == cudaErrorMemoryAllocation ? StatusCode::out_of_memory : StatusCode::internal,
                std::string(what) + ": " + cudaGetErrorString(err));
  }
}

DeviceGuard::DeviceGuard(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);
}

}  // namespace reel::attn::cuda_checks
