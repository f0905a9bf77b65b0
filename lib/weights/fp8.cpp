// FP8 (E4M3fn, E5M2) → f32 / bf16 / f16 decoding through two 256-entry tables built from the bit layout.
#include "weights/fp8.hpp"

#include <array>
#include <bit>

#include "parallel.hpp"
#include "reel/status.hpp"

namespace reel::detail {
namespace {

constexpr float e4m3_decode(uint8_t v) {
  const uint32_t sign = uint32_t(v & 0x80u) << 24;
  const uint32_t exp = (v >> 3) & 0xfu;
  const uint32_t man = v & 0x7u;
  if (exp == 15 && man == 7) return std::bit_cast<float>(sign | 0x7fc00000u);  // NaN (e4m3fn has no inf)
  if (exp == 0) {
    const float m = float(man) * (1.0f / 512.0f);  // man/8 · 2^-6, exact
    return sign ? -m : m;
  }
  return std::bit_cast<float>(sign | ((exp + 127u - 7u) << 23) | (man << 20));
}

constexpr float e5m2_decode(uint8_t v) {
  const uint32_t sign = uint32_t(v & 0x80u) << 24;
  const uint32_t exp = (v >> 2) & 0x1fu;
  const uint32_t man = v & 0x3u;
  if (exp == 31) return std::bit_cast<float>(sign | (man == 0 ? 0x7f800000u : 0x7fc00000u));  // ±inf / NaN
  if (exp == 0) {
    const float m = float(man) * (1.0f / 65536.0f);  // man/4 · 2^-14, exact
    return sign ? -m : m;
  }
  return std::bit_cast<float>(sign | ((exp + 127u - 15u) << 23) | (man << 21));
}

template <float (*Decode)(uint8_t)>
constexpr std::array<float, 256> make_table() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; ++i) t[size_t(i)] = Decode(uint8_t(i));
  return t;
}

constexpr std::array<float, 256> kE4M3 = make_table<e4m3_decode>();
constexpr std::array<float, 256> kE5M2 = make_table<e5m2_decode>();

}  // namespace

float fp8_e4m3_to_float(uint8_t code) { return kE4M3[code]; }
float fp8_e5m2_to_float(uint8_t code) { return kE5M2[code]; }

void convert_fp8(const uint8_t* src, bool e5m2, void* dst, DType dst_type, size_t n) {
  require(dst_type == DType::f32 || dst_type == DType::bf16 || dst_type == DType::f16, StatusCode::unsupported,
          "FP8 weights convert to f32, bf16 or f16, not " + std::string(dtype_name(dst_type)));
  const float* table = e5m2 ? kE5M2.data() : kE4M3.data();
  parallel_for(int64_t(n), 1 << 16, [&](int64_t b, int64_t e) {
    switch (dst_type) {
      case DType::f32:
        for (int64_t i = b; i < e; ++i) static_cast<float*>(dst)[i] = table[src[i]];
        break;
      case DType::bf16:
        for (int64_t i = b; i < e; ++i) static_cast<bf16*>(dst)[i] = bf16::from_float(table[src[i]]);
        break;
      default:
        for (int64_t i = b; i < e; ++i) static_cast<f16*>(dst)[i] = f16::from_float(table[src[i]]);
        break;
    }
  });
}

}  // namespace reel::detail
