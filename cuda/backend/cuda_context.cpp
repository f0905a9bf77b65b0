// The CUDA backend's shared state: library handles, scratch memory, plan cache; and the
// cuBLAS/cuDNN error mapping.
#include "backend/cuda_context.hpp"

#include "cuda_check.hpp"
#include "cuda_memory.hpp"

namespace reel::cuda {

void throw_cublas_error(cublasStatus_t status, const char* call) {
  StatusCode code = StatusCode::internal;
  if (status == CUBLAS_STATUS_ALLOC_FAILED) code = StatusCode::out_of_memory;
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_ARCH_MISMATCH) code = StatusCode::unsupported;
  throw Error(code, std::string(call) + " failed: " + cublasGetStatusName(status) + " (" +
                        cublasGetStatusString(status) + ")");
}

void throw_cudnn_error(cudnnStatus_t status, const char* call) {
  StatusCode code = StatusCode::internal;
  const int s = int(status);
  if (s == int(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED) ||
      s == int(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED))
    code = StatusCode::out_of_memory;
  if (s / 1000 == int(CUDNN_STATUS_NOT_SUPPORTED) / 1000) code = StatusCode::unsupported;
  throw Error(code, std::string(call) + " failed: " + cudnnGetErrorString(status));
}

CudaContext::CudaContext(int device, cudaStream_t stream, bool allow_tf32)
    : device_(device), stream_(stream), allow_tf32_(allow_tf32) {}

CudaContext::~CudaContext() {
  // Queued work may still use the handles' internal buffers: wait, then destroy. Errors are
  // ignored (a destructor cannot report them, and a lost device has nothing left to free).
  int previous = -1;
  if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
  (void)cudaSetDevice(device_);
  (void)cudaStreamSynchronize(stream_);
  if (dnn_) (void)cudnnDestroy(dnn_);
  if (blas_) (void)cublasDestroy(blas_);
  if (lt_) (void)cublasLtDestroy(lt_);
  (void)cudaGetLastError();
  if (previous >= 0) (void)cudaSetDevice(previous);
}

cublasLtHandle_t CudaContext::lt() {
  if (!lt_) {
    gemm_workspace_ = cuda_memory::allocate(device_, kGemmWorkspaceBytes);
    check_cublas(cublasLtCreate(&lt_), "cublasLtCreate");
  }
  return lt_;
}

cublasHandle_t CudaContext::blas() {
  if (!blas_) {
    check_cublas(cublasCreate(&blas_), "cublasCreate");
    // Exact f32 unless TF32 is allowed: the compute type of each call says so as well.
    check_cublas(cublasSetMathMode(blas_, allow_tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                 "cublasSetMathMode");
  }
  check_cublas(cublasSetStream(blas_, stream_), "cublasSetStream");
  return blas_;
}

cudnnHandle_t CudaContext::dnn() {
  if (!dnn_) check_cudnn(cudnnCreate(&dnn_), "cudnnCreate");
  check_cudnn(cudnnSetStream(dnn_, stream_), "cudnnSetStream");
  return dnn_;
}

std::shared_ptr<std::byte> CudaContext::scratch(size_t bytes) {
  std::shared_ptr<std::byte> block = cuda_memory::allocate(device_, bytes);
  op_scratch_.push_back(block);
  return block;
}

std::shared_ptr<void> CudaContext::cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make) {
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  std::shared_ptr<void> value = make();
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= 4096) cache_.clear();  // bound memory for workloads with endless shapes
  return cache_.emplace(key, std::move(value)).first->second;
}

}  // namespace reel::cuda
