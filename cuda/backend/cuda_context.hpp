// Internal: what the CUDA backend's ops share: the device and stream, the cuBLASLt / cuBLAS /
// cuDNN handles (created on first use), scratch memory from the caching allocator, a GEMM
// workspace, and a cache of per-shape plans (GEMM algorithms, convolution algorithms). One per
// backend; the backend serialises execute(), so none of this needs its own lock except the
// plan cache, which supports() may read.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "reel/backend.hpp"

namespace reel::cuda {

// cuBLAS / cuDNN status as reel::Error naming the call: out_of_memory for allocation
// failures, unsupported for "not supported" statuses, internal otherwise.
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call);
inline void check_cublas(cublasStatus_t s, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS) throw_cublas_error(s, call);
}
inline void check_cudnn(cudnnStatus_t s, const char* call) {
  if (s != CUDNN_STATUS_SUCCESS) throw_cudnn_error(s, call);
}

class CudaContext {
 public:
  CudaContext(int device, cudaStream_t stream, bool allow_tf32);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  bool allow_tf32() const { return allow_tf32_; }

  cublasLtHandle_t lt();
  cublasHandle_t blas();   // stream set to stream()
  cudnnHandle_t dnn();     // stream set to stream()

  // Device memory for the current op. The context keeps a reference until end_op(), which the
  // backend calls after it has ordered reel's stream behind the op, so the block is reused only
  // by work queued after the op (whatever stream the op ran on).
  std::shared_ptr<std::byte> scratch(size_t bytes);
  void end_op() { op_scratch_.clear(); }
  // The cuBLASLt workspace (kept for the context's life).
  void* gemm_workspace() { return gemm_workspace_.get(); }
  static constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

  // The cached plan for `key`, built by make() on first use.
  std::shared_ptr<void> cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make);

 private:
  int device_;
  cudaStream_t stream_;
  bool allow_tf32_;
  cublasLtHandle_t lt_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  std::shared_ptr<std::byte> gemm_workspace_;
  std::vector<std::shared_ptr<std::byte>> op_scratch_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, std::shared_ptr<void>> cache_;
};

// Largest power of two (at most 256) dividing the address: the alignment cuBLASLt and the
// plan keys are told about.
inline unsigned alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  unsigned align = 256;
  while (align > 1 && a % align != 0) align >>= 1;
  return align;
}

}  // namespace reel::cuda
