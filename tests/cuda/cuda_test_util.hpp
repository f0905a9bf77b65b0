// Helpers for the CUDA op tests (tests/cuda/test_cuda_ops_*.cpp): the GPU backend (or a skip
// when the machine has none), running one op on the CPU backend and on the GPU with the same
// inputs, and the error-bound arithmetic the comparisons use.
//
// How the tolerances are derived. The CPU backend's ops are checked against double-precision
// references in tests/core; here the GPU result is compared with the CPU result. Each backend
// is within its own bound E of the exact value, so |gpu − cpu| <= E_gpu + E_cpu. Both compute
// in f32 and round once (or, where stated, twice) into the output type t, so for an output
// element of magnitude |y|:
//   rounding into t:        u_t·|y| per rounding (u_t = 2^-8 bf16, 2^-11 f16, 2^-24 f32); two
//                           correctly rounded values of nearly equal f32 results can also land
//                           one ulp apart (ulp <= 2·u_t·|y|), which the sum of both bounds covers;
//   f32 arithmetic:         per op, written next to each test (sums: Higham's γ_n·Σ|terms|).
// GPU GEMMs and convolutions accumulate on tensor cores or in cuDNN's own orders; tensor-core
// f32 accumulation may truncate instead of rounding, so the GPU's γ uses u = 2^-22 (twice the
// truncation error of 2^-23), a bound valid for any summation order.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/op_test_util.hpp"
#include "reel/backend.hpp"
#include "reel/cuda_backend.hpp"

namespace reel::test {

inline bool have_gpu() { return cuda_device_count() > 0; }

// One CUDA backend (device 0) for the whole test program (never destroyed: no CUDA calls
// during static destruction).
inline Backend& gpu() {
  static Backend* be = make_cuda_backend({.device = 0}).release();
  return *be;
}
inline Backend& cpu_backend() {
  static std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});
  return *be;
}

#define REEL_REQUIRE_GPU() REEL_SKIP_WITHOUT_GPU(::reel::test::have_gpu())

inline Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda(0)); }
inline Tensor on_cpu(const Tensor& t) { return t.to(Device::cpu()); }

// γ_n for the GPU's accumulations (see the file comment).
inline double gamma_gpu(int64_t n) {
  constexpr double u = 0x1p-22;
  return double(n) * u / (1.0 - double(n) * u);
}

// Per-element bound: rel·|y_i| + abs_i.
inline std::vector<double> bound(const std::vector<double>& y, double rel, const std::vector<double>& abs_part) {
  std::vector<double> b(y.size());
  for (size_t i = 0; i < y.size(); ++i) b[i] = rel * std::abs(y[i]) + (abs_part.empty() ? 0.0 : abs_part[i]);
  return b;
}

inline std::vector<double> scaled(const std::vector<double>& v, double s) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = s * std::abs(v[i]);
  return r;
}

// |t| as an f32 CPU tensor (for Σ|terms| computed with the same op on absolute values).
inline Tensor abs_f32(const Tensor& t) {
  std::vector<float> v = on_cpu(t).to_floats();
  for (float& x : v) x = std::abs(x);
  return Tensor::from_floats(t.shape(), v, DType::f32);
}

// Compares a GPU result with the CPU result: |gpu − cpu| <= tol elementwise.
inline void expect_near_cpu(const Tensor& gpu_out, const Tensor& cpu_out, const std::vector<double>& tol,
                            const std::string& what) {
  expect_within(on_cpu(gpu_out), to_doubles(cpu_out), tol, what);
}

inline void expect_same_bits(const Tensor& gpu_out, const Tensor& cpu_out, const std::string& what) {
  expect_identical(on_cpu(gpu_out), cpu_out, what);
}

}  // namespace reel::test
