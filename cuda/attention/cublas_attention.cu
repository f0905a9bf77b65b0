// cublas: the baseline CUDA attention, "what you would write without a flash kernel":
// S = scale·Q·Kᵀ (cublasGemmStridedBatchedEx over heads, f32 out), a row softmax kernel
// (P in the input dtype, optional log-sum-exp), O = P·V (second batched GEMM). It
// materialises S for a chunk of query rows (≤ 1 GiB of workspace, stream-ordered allocation).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

#include "attention/builtin_kernels.hpp"
#include "attention/cuda_checks.hpp"

namespace reel::attn {

namespace {

constexpr size_t kWorkspaceBytes = size_t(1) << 30;
constexpr int kSoftmaxThreads = 256;

template <class T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }

__device__ float block_reduce(float x, bool is_max, float* shared) {
  for (int o = 16; o > 0; o /= 2) {
    const float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = is_max ? fmaxf(x, y) : x + y;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // `shared` may still be read from the previous reduction
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  x = lane < kSoftmaxThreads / 32 ? shared[lane] : (is_max ? -INFINITY : 0.0f);
  for (int o = 16; o > 0; o /= 2) {
    const float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = is_max ? fmaxf(x, y) : x + y;
  }
  return x;
}

// One block per row of S [heads × rows][cols]: P = softmax(S) (S already scaled); lse for row
// i of head h goes to lse[h·lse_head_stride + i] when lse is set.
template <class T>
__global__ void __launch_bounds__(kSoftmaxThreads) softmax_rows(const float* s, T* p, int64_t cols, int64_t rows,
                                                                 float* lse, int64_t lse_head_stride) {
  __shared__ float shared[kSoftmaxThreads / 32];
  const int64_t row = blockIdx.x;
  const float* in = s + row * cols;
  T* out = p + row * cols;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += kSoftmaxThreads) m = fmaxf(m, in[j]);
  m = block_reduce(m, true, shared);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += kSoftmaxThreads) sum += expf(in[j] - m);
  sum = block_reduce(sum, false, shared);
  const float inv = 1.0f / sum;
  for (int64_t j = threadIdx.x; j < cols; j += kSoftmaxThreads) out[j] = from_float<T>(expf(in[j] - m) * inv);
  if (lse && threadIdx.x == 0) lse[(row / rows) * lse_head_stride + row % rows] = m + logf(sum);
}

// Whether this build holds the softmax kernel for the current device (kernel_image.hpp); the
// GEMMs are cuBLAS's own code. All instantiations are in this file, so one answers for all.
kernel_image::Probe probe_softmax() {
  cudaFuncAttributes attr{};
  return {int(cudaFuncGetAttributes(&attr, softmax_rows<float>)), REEL_CUDA_ARCH_LIST_STRING};
}

const char* cublas_error(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(StatusCode::internal, std::string("cublas attention: ") + what + ": " + cublas_error(s));
}

// One handle per (thread, device): cuBLAS handles must not be shared between threads running
// at once. Deliberately never destroyed (destroying at exit can race the CUDA runtime teardown).
cublasHandle_t handle_for(int device) {
  thread_local std::vector<cublasHandle_t> handles;
  if (handles.size() <= size_t(device)) handles.resize(size_t(device) + 1, nullptr);
  if (!handles[size_t(device)]) check_cublas(cublasCreate(&handles[size_t(device)]), "cublasCreate");
  return handles[size_t(device)];
}

cudaDataType_t cuda_type(int dtype) {
  return dtype == REEL_ATTENTION_BF16 ? CUDA_R_16BF : dtype == REEL_ATTENTION_F16 ? CUDA_R_16F : CUDA_R_32F;
}

class CublasAttention final : public AttentionKernel {
 public:
  std::string_view name() const override { return "cublas"; }
  std::string_view description() const override {
    return "baseline: two cuBLAS batched GEMMs with a softmax kernel between them (materialises S per chunk)";
  }
  DeviceType device_type() const override { return DeviceType::cuda; }
  int priority() const override { return 10; }

  Support supports(const AttentionParams& p) const override {
    const int64_t lds[] = {p.q_row_stride, p.k_row_stride, p.v_row_stride, p.out_row_stride, p.seq_kv};
    for (int64_t ld : lds)
      if (ld > INT_MAX) return Support::no("row strides and seq_kv must fit in int for cuBLAS");
    if (p.head_dim > p.q_row_stride || p.head_dim > p.k_row_stride || p.head_dim > p.v_row_stride ||
        p.head_dim > p.out_row_stride)
      return Support::no("cuBLAS needs row strides >= head_dim");
    // One query row needs heads·seq_kv scores (f32) and probabilities (the io dtype): 8 bytes
    // per key for f32, 6 for bf16/f16. A row that does not fit would make run()'s chunk 0.
    if (size_t(p.heads) * size_t(p.seq_kv) * (4 + dtype_size(DType(p.dtype))) > kWorkspaceBytes)
      return Support::no("heads × seq_kv too large for one query row of workspace");
    if (Support s = cuda_checks::device_ok(p, 80); !s) return s;
    if (Support s = cuda_checks::kernel_image_ok(p, probe_softmax); !s) return s;
    return cuda_checks::pointers_on_device(p);
  }

  void run(const AttentionParams& p) const override {
    cuda_checks::DeviceGuard guard(p.device_index);
    cuda_checks::ReelStreamOrder order(p);
    auto stream = static_cast<cudaStream_t>(p.stream);
    cublasHandle_t handle = handle_for(p.device_index);
    check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
    const size_t elem = dtype_size(DType(p.dtype));
    const int64_t skv = p.seq_kv, d = p.head_dim;
    const size_t per_row = size_t(p.heads) * size_t(skv) * (4 + elem);
    const int64_t chunk = std::min<int64_t>(p.seq_q, int64_t(kWorkspaceBytes / per_row));
    if (chunk < 1) throw Error(StatusCode::unsupported, "cublas attention: heads × seq_kv too large for the workspace");
    void* ws = nullptr;
    cuda_checks::check(cudaMallocAsync(&ws, size_t(chunk) * per_row, stream), "cublas attention workspace");
    struct Release {  // frees the workspace in stream order, also when a GEMM throws
      void* ws;
      cudaStream_t stream;
      ~Release() { (void)cudaFreeAsync(ws, stream); }
    } release{ws, stream};
    float* s = static_cast<float*>(ws);
    void* prob = static_cast<char*>(ws) + size_t(chunk) * size_t(p.heads) * size_t(skv) * 4;
    const cudaDataType_t t = cuda_type(p.dtype);
    const float one = 1.0f, zero = 0.0f, scale = p.scale;
    auto at = [&](const void* base, int64_t offset) {
      return static_cast<const char*>(base) + offset * int64_t(elem);
    };
    for (int64_t b = 0; b < p.batch; ++b)
      for (int64_t i0 = 0; i0 < p.seq_q; i0 += chunk) {
        const int64_t rows = std::min(chunk, p.seq_q - i0);
        const void* q = at(p.q, b * p.q_batch_stride + i0 * p.q_row_stride);
        const void* k = at(p.k, b * p.k_batch_stride);
        const void* v = at(p.v, b * p.v_batch_stride);
        void* o = const_cast<char*>(at(p.out, b * p.out_batch_stride + i0 * p.out_row_stride));
        // Sᵀ (col-major skv × rows, i.e. S row-major) = Kᵀᵀ·Q per head.
        check_cublas(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(skv), int(rows), int(d), &scale,
                                                k, t, int(p.k_row_stride), p.k_head_stride, q, t, int(p.q_row_stride),
                                                p.q_head_stride, &zero, s, CUDA_R_32F, int(skv), rows * skv,
                                                int(p.heads), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "Q·Kᵀ GEMM");
        const unsigned grid = unsigned(p.heads * rows);
        float* lse = p.lse ? p.lse + b * p.heads * p.seq_q + i0 : nullptr;
        if (p.dtype == REEL_ATTENTION_BF16)
          softmax_rows<<<grid, kSoftmaxThreads, 0, stream>>>(s, static_cast<__nv_bfloat16*>(prob), skv, rows, lse, p.seq_q);
        else if (p.dtype == REEL_ATTENTION_F16)
          softmax_rows<<<grid, kSoftmaxThreads, 0, stream>>>(s, static_cast<__half*>(prob), skv, rows, lse, p.seq_q);
        else
          softmax_rows<<<grid, kSoftmaxThreads, 0, stream>>>(s, static_cast<float*>(prob), skv, rows, lse, p.seq_q);
        cuda_checks::check(cudaGetLastError(), "cublas attention softmax launch");
        // Oᵀ (col-major d × rows) = Vᵀ·Pᵀ per head.
        check_cublas(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, int(d), int(rows), int(skv), &one, v,
                                                t, int(p.v_row_stride), p.v_head_stride, prob, t, int(skv), rows * skv,
                                                &zero, o, t, int(p.out_row_stride), p.out_head_stride, int(p.heads),
                                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "P·V GEMM");
      }
    order.finish();  // the workspace is the stream-ordered pool's, not reel's: no need to wait for its release
  }
};

}  // namespace

std::shared_ptr<AttentionKernel> make_cublas_kernel() { return std::make_shared<CublasAttention>(); }

}  // namespace reel::attn
