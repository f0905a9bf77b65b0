// Element types and the bf16 / f16 <-> f32 conversions (round to nearest, ties to even).
//
//   reel::bf16 h = reel::bf16::from_float(1.0f / 3.0f);
//   float back = h.to_float();            // 0.333984375
//   size_t bytes = reel::dtype_size(reel::DType::f16) * n;
#pragma once
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace reel {

enum class DType : uint8_t { f32 = 0, bf16 = 1, f16 = 2, i32 = 3 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::i32: return 4;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
  }
  return "?";
}

// bfloat16: the top 16 bits of an IEEE f32.
struct bf16 {
  uint16_t bits = 0;

  static constexpr bf16 from_bits(uint16_t b) { bf16 h; h.bits = b; return h; }
  static constexpr bf16 from_float(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return from_bits(uint16_t((u >> 16) | 0x40u));  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return from_bits(uint16_t(u >> 16));
  }
  constexpr float to_float() const { return std::bit_cast<float>(uint32_t(bits) << 16); }
};

// IEEE binary16.
struct f16 {
  uint16_t bits = 0;

  static constexpr f16 from_bits(uint16_t b) { f16 h; h.bits = b; return h; }
  static constexpr f16 from_float(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return from_bits(uint16_t(sign | 0x7e00u));  // NaN
    if (a >= 0x477ff000u) return from_bits(uint16_t(sign | 0x7c00u));  // overflow -> inf
    if (a < 0x38800000u) {                                            // subnormal or zero
      // value = a_float; f16 subnormal step is 2^-24. Round |x| * 2^24 to nearest even.
      const float mag = std::bit_cast<float>(a);
      const float scaled = mag * 16777216.0f;  // exact: power-of-two scale
      // round half to even on a value < 1024 (fits exactly in float)
      float r = scaled;
      const float fl = float(int32_t(scaled));
      const float diff = scaled - fl;
      if (diff > 0.5f || (diff == 0.5f && (int32_t(fl) & 1))) r = fl + 1.0f; else r = fl;
      return from_bits(uint16_t(sign | uint32_t(r)));
    }
    // normal: rebias exponent (127 -> 15), round mantissa 23 -> 10 bits
    uint32_t m = a - (112u << 23);
    m += 0xfffu + ((m >> 13) & 1u);
    return from_bits(uint16_t(sign | (m >> 13)));
  }
  constexpr float to_float() const {
    const uint32_t sign = uint32_t(bits & 0x8000u) << 16;
    const uint32_t exp = (bits >> 10) & 0x1fu;
    const uint32_t man = bits & 0x3ffu;
    if (exp == 0) {
      const float v = float(man) * (1.0f / 16777216.0f);  // man * 2^-24
      return sign ? -v : v;
    }
    if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
    return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
  }
};

// Round an f32 to the nearest value representable in `t` (f32 and i32 pass through).
constexpr float round_to(DType t, float x) {
  if (t == DType::bf16) return bf16::from_float(x).to_float();
  if (t == DType::f16) return f16::from_float(x).to_float();
  return x;
}

}  // namespace reel
