// Helpers for the op tests (tests/core/test_ops_*.cpp): per-element error bounds against a
// double-precision reference, the unit roundoffs the bounds are built from, and a seeded
// random tensor with values away from zero.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "reel/backend.hpp"
#include "reel/ops.hpp"

namespace reel::test {

// Unit roundoff (half an ulp at 1) of each type: |round(x) − x| <= u·|x| for normal values.
inline constexpr double kU32 = 0x1p-24;
inline constexpr double kUBf16 = 0x1p-8;
inline constexpr double kUF16 = 0x1p-11;
inline double unit_roundoff(DType t) {
  return t == DType::bf16 ? kUBf16 : t == DType::f16 ? kUF16 : kU32;
}
// Higham's γ_n = n·u / (1 − n·u): the worst-case relative error of an n-term f32 sum or dot
// product in any summation order (blocked, tree, vectorised), relative to Σ|terms|.
inline double gamma_f32(int64_t n) { return double(n) * kU32 / (1.0 - double(n) * kU32); }

// Values in ±[lo, hi] (random sign), rounded to dtype: never zero, so no term vanishes and
// relative bounds stay meaningful.
inline Tensor random_nonzero(const Shape& shape, uint64_t seed, DType dtype = DType::f32, float lo = 0.05f,
                             float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (auto& x : v) x = sign(rng) ? mag(rng) : -mag(rng);
  return Tensor::from_floats(shape, v, dtype);
}

// Checks |out[i] − ref[i]| <= tol[i] for every i; reports the worst offenders.
inline void expect_within(const Tensor& out, const std::vector<double>& ref, const std::vector<double>& tol,
                          const std::string& what) {
  const std::vector<double> got = to_doubles(out);
  ASSERT_EQ(got.size(), ref.size()) << what;
  ASSERT_EQ(tol.size(), ref.size()) << what;
  size_t bad = 0, worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::abs(got[i] - ref[i]);
    const double ratio = err / std::max(tol[i], 1e-300);
    if (!(err <= tol[i])) ++bad;  // also catches NaN
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.size() << " elements outside the bound; worst at " << worst
                     << ": got " << got[worst] << ", reference " << ref[worst] << ", bound " << tol[worst];
}

// Bitwise equality of two tensors of the same shape and dtype.
inline void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << what << ": results differ";
}

// Runs fn(backend) with 1 and with 2 threads and checks the outputs are bit-identical.
template <class F>
void expect_thread_invariant(F&& fn, const std::string& what) {
  auto one = make_cpu_backend({.threads = 1});
  auto two = make_cpu_backend({.threads = 2});
  const Tensor a = fn(*one);
  const Tensor b = fn(*two);
  expect_identical(a, b, what + " (1 vs 2 threads)");
}

inline const char* dname(DType t) { return dtype_name(t).data(); }

}  // namespace reel::test
