// Internal: a GEMM as the column-major libraries (cuBLASLt, cuBLAS) see it, and how reel's
// row-major Linear and BatchMatMul map onto it. Host code only; the kernel-logic test runs the
// mapping through a plain column-major reference GEMM to check the transposes and strides.
//
// Row-major tensors are handed over transposed: out[M, N] = x[M, K]·w[N, K]ᵀ is, column-major,
// D[N, M] = op(W)[N, K]·X[K, M] with W the K×N column-major view of w (so op = transpose).
#pragma once
#include <cstdint>

#include "reel/backend.hpp"

namespace reel::cuda {

// Column-major D[m, n] (leading dimension ldd) = alpha · op(A)[m, k] · B[k, n], `batch` times,
// operands `stride_*` elements apart. op(A) = A (m×k, ld lda) or Aᵀ (A stored k×m, ld lda).
struct Gemm {
  bool trans_a = false;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  const void* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  int64_t ldd = 0, stride_d = 0;
  DType ab = DType::f32;  // element type of A and B
  float alpha = 1.0f;
};

// Linear: x [rows, k] and w [n, k] row-major (already in the compute type `ab`).
Gemm linear_gemm(const void* x, const void* w, int64_t rows, int64_t n, int64_t k, DType ab);

// BatchMatMul: a [B, M, K], b [B, K, N] (or [B, N, K] with transpose_b), out [B, M, N].
Gemm batch_matmul_gemm(const op::BatchMatMul& o);

}  // namespace reel::cuda
