// Shared device/kernel-image/pointer/alignment checks of the CUDA attention kernels, and the
// ordering of a caller's stream with reel's stream.
#include "attention/cuda_checks.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda_memory.hpp"

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

Support kernel_image_ok(const AttentionParams& p, kernel_image::ProbeFn probe) {
  static std::mutex mutex;
  static std::map<std::pair<kernel_image::ProbeFn, int>, std::string> cache;  // "" = yes
  const std::pair key{probe, p.device_index};
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(key); it != cache.end())
      return it->second.empty() ? Support::yes() : Support::no(it->second);
  }
  kernel_image::Probe result;
  try {
    DeviceGuard guard(p.device_index);  // cudaFuncGetAttributes asks about the current device
    result = probe();
  } catch (const Error& e) {
    return Support::no(e.what());
  }
  const auto err = cudaError_t(result.error);
  if (err != cudaSuccess) (void)cudaGetLastError();
  std::string reason;
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction)
    reason = kernel_image::no_code_reason(p.device_index, compute_capability(p.device_index), result.arch_list);
  else if (err != cudaSuccess)  // not about this build (e.g. a context that failed): ask again next time
    return Support::no("cannot load the kernel on CUDA device " + std::to_string(p.device_index) + ": " +
                       cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
  std::lock_guard lock(mutex);
  cache.emplace(key, reason);
  return reason.empty() ? Support::yes() : Support::no(reason);
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

namespace {

// One event per device, recorded and waited on under its mutex (a wait takes the event's state
// at the time of the call, so the next record may reuse it at once). Never destroyed, as reel's
// streams.
struct OrderEvent {
  std::mutex mutex;
  cudaEvent_t event = nullptr;
};

OrderEvent& order_event(int device) {
  static std::mutex mutex;
  static auto* all = new std::vector<std::unique_ptr<OrderEvent>>();
  std::lock_guard lock(mutex);
  if (all->size() <= size_t(device)) all->resize(size_t(device) + 1);
  auto& e = (*all)[size_t(device)];
  if (!e) e = std::make_unique<OrderEvent>();
  return *e;
}

// `waiter` waits for the work queued on `signaller` so far (the current device is `device`).
void wait_for(int device, cudaStream_t waiter, cudaStream_t signaller, const char* what) {
  OrderEvent& e = order_event(device);
  std::lock_guard lock(e.mutex);
  if (!e.event) check(cudaEventCreateWithFlags(&e.event, cudaEventDisableTiming), what);
  check(cudaEventRecord(e.event, signaller), what);
  check(cudaStreamWaitEvent(waiter, e.event, 0), what);
}

}  // namespace

ReelStreamOrder::ReelStreamOrder(const AttentionParams& p) : device_(p.device_index) {
  auto stream = static_cast<cudaStream_t>(p.stream);
  if (!stream || stream == cudaStreamLegacy) return;
  cudaStream_t reel = cuda_memory::stream(device_);
  if (stream == reel) return;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream, &capture), "cudaStreamIsCapturing(params.stream)");
  if (capture != cudaStreamCaptureStatusNone) return;
  wait_for(device_, stream, reel, "ordering params.stream after reel's stream");
  caller_ = stream;
  reel_ = reel;
}

void ReelStreamOrder::finish() {
  if (!caller_) return;
  wait_for(device_, reel_, std::exchange(caller_, nullptr), "ordering reel's stream after params.stream");
}

ReelStreamOrder::~ReelStreamOrder() {
  try {
    finish();
  } catch (...) {  // a destructor cannot report it; run() calls finish() itself
  }
}

}  // namespace reel::attn::cuda_checks
