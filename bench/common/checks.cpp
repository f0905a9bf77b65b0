// Random benchmark inputs and the bounds and distances the benchmarks check results with.
#include "common/checks.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace reel::bench {

Tensor random_signed_tensor(const Shape& shape, uint64_t seed, DType dtype) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(0.05f, 1.0f);
  std::vector<float> v(size_t(shape.numel()));
  for (auto& x : v) x = (rng() & 1) ? d(rng) : -d(rng);
  return Tensor::from_floats(shape, v, dtype);
}

double output_rounding(DType dtype) {
  return dtype == DType::bf16 ? 0x1p-8 : dtype == DType::f16 ? 0x1p-11 : 0.0;
}

double dot_error_bound(int64_t k, double abs_sum, double exact, double ut, double extra) {
  const double u32 = 0x1p-24, gamma = double(k + 1) * u32 / (1 - double(k + 1) * u32);
  return (gamma + extra) * abs_sum * (1 + ut) + ut * std::abs(exact);
}

double relative_l2(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += double(got[i] - ref[i]) * double(got[i] - ref[i]);
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace reel::bench
