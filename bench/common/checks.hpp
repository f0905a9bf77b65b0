// What the benchmarks share for checking a result before timing it: random signed inputs, the
// error bound of a sampled output against a double-precision dot-product reference, and the
// relative L2 distance of two results.
//
//   const Tensor x = bench::random_signed_tensor({m, k}, /*seed=*/1, DType::bf16);
//   // ref = Σ x·w in double, abs_sum = Σ|x·w|:
//   if (!(std::abs(got - ref) <= bench::dot_error_bound(k, abs_sum, ref, bench::output_rounding(DType::bf16)))) ...
#pragma once
#include <cstdint>
#include <vector>

#include "reel/tensor.hpp"

namespace reel::bench {

// Values of magnitude uniform in [0.05, 1) with random signs (mt19937_64 from `seed`), stored as `dtype`.
Tensor random_signed_tensor(const Shape& shape, uint64_t seed, DType dtype);

// Unit roundoff of storing a result as `dtype`: 2^-8 bf16, 2^-11 f16, 0 for f32 (whose rounding
// the accumulation bound already covers).
double output_rounding(DType dtype);

// Bound on |computed − exact| for `bias + Σ_k x·w` accumulated in f32 and stored with roundoff
// `ut`: (γ_{k+1} + extra)·abs_sum·(1 + ut) + ut·|exact|, with γ_n = n·2⁻²⁴ / (1 − n·2⁻²⁴),
// abs_sum = |bias| + Σ|x·w|, and `extra` a further relative error of the products (f32
// activations against bf16 weights: 2⁻⁸).
double dot_error_bound(int64_t k, double abs_sum, double exact, double ut, double extra = 0.0);

// ‖got − ref‖₂ / ‖ref‖₂ (elementwise differences taken in float, sums in double).
double relative_l2(const std::vector<float>& got, const std::vector<float>& ref);

}  // namespace reel::bench
