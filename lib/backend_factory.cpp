// make_backend (CPU or CUDA by device), and the CUDA entry points of reel/cuda_backend.hpp for
// builds without CUDA, where they say so instead of failing to link.
#include <string>

#include "reel/cuda_backend.hpp"

namespace reel {

std::unique_ptr<Backend> make_backend(Device device, int cpu_threads) {
  if (device.type == DeviceType::cpu) return make_cpu_backend({.threads = cpu_threads});
  return make_cuda_backend({.device = device.index});
}

std::unique_ptr<Backend> make_backend(std::string_view device, int cpu_threads) {
  return make_backend(Device::parse(device), cpu_threads);
}

#ifndef REEL_HAVE_CUDA

namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(StatusCode::unsupported, std::string(what) + ": reel was built without CUDA");
}
}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions&) { no_cuda("make_cuda_backend"); }
void* cuda_stream(const Backend&) noexcept { return nullptr; }
CudaMemoryStats cuda_memory_stats(int) { no_cuda("cuda_memory_stats"); }
void reset_cuda_peak_memory(int) { no_cuda("reset_cuda_peak_memory"); }
void release_cached_cuda_memory(int) { no_cuda("release_cached_cuda_memory"); }

#endif

}  // namespace reel
