// CUDA runtime errors as reel::Error (see cuda_check.hpp).
#include "cuda_check.hpp"

#include <string>

#include "reel/status.hpp"

namespace reel::cuda {

void throw_cuda_error(cudaError_t err, const char* call) {
  (void)cudaGetLastError();  // clear the (non-sticky) last error so later calls start clean
  StatusCode code = StatusCode::internal;
  if (err == cudaErrorMemoryAllocation) code = StatusCode::out_of_memory;
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || err == cudaErrorInvalidDevice)
    code = StatusCode::unsupported;
  throw Error(code, std::string(call) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda_error(err, (std::string("launch of ") + kernel).c_str());
}

DeviceGuard::DeviceGuard(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) {
    (void)cudaGetLastError();
    previous_ = -1;
  }
  if (previous_ != device) check(cudaSetDevice(device), ("cudaSetDevice(" + std::to_string(device) + ")").c_str());
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);
}

}  // namespace reel::cuda
