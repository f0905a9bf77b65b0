// Internal: FP8 (OCP 8-bit floating point, E4M3fn and E5M2) decoding and conversion to reel dtypes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reel/dtype.hpp"

namespace reel::detail {

// Exact decodings, per the OCP OFP8 specification (v1.0):
//   E4M3fn: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN;
//           largest finite 448; subnormals m/8 · 2^-6.
//   E5M2:   sign, 5 exponent bits (bias 15), 2 mantissa bits; IEEE-like: S.11111.00 is ±inf,
//           S.11111.{01,10,11} are NaN; subnormals m/4 · 2^-14.
float fp8_e4m3_to_float(uint8_t code);
float fp8_e5m2_to_float(uint8_t code);

// Decodes n FP8 codes (e5m2 = false: E4M3fn) into `dst` of type `dst_type` (f32, bf16 or f16;
// every FP8 value is exactly representable in all three, NaN stays NaN, ±inf stays ±inf).
void convert_fp8(const uint8_t* src, bool e5m2, void* dst, DType dst_type, size_t n);

}  // namespace reel::detail
