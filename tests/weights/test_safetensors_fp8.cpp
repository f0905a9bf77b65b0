// FP8 decoding: all 256 E4M3fn and all 256 E5M2 codes against a decoding written here from the
// OCP OFP8 definition (value = (-1)^s · 2^(e-bias) · (1 + m/2^M), subnormals 2^(1-bias) · m/2^M),
// then the same codes through WeightStore::load into f32, bf16 and f16, and against torch.
#include <cmath>
#include <limits>

#include "common/test_util.hpp"
#include "reel/weights.hpp"
#include "weights/fp8.hpp"

using namespace reel;

namespace {

// Independent reference in double precision, straight from the format definition.
double reference_fp8(uint8_t code, int exp_bits, int man_bits, bool e4m3fn) {
  const int bias = (1 << (exp_bits - 1)) - 1;  // 7 for E4M3, 15 for E5M2
  const int sign = code >> 7;
  const int e = (code >> man_bits) & ((1 << exp_bits) - 1);
  const int m = code & ((1 << man_bits) - 1);
  const int e_max = (1 << exp_bits) - 1;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (e4m3fn) {
    if (e == e_max && m == (1 << man_bits) - 1) return nan;  // only S.1111.111 is NaN; no infinities
  } else if (e == e_max) {
    return m == 0 ? (sign ? -INFINITY : INFINITY) : nan;    // IEEE-style specials
  }
  const double frac = double(m) / double(1 << man_bits);
  const double mag = e == 0 ? std::ldexp(frac, 1 - bias) : std::ldexp(1.0 + frac, e - bias);
  return sign ? -mag : mag;
}

double ref_e4m3(uint8_t c) { return reference_fp8(c, 4, 3, true); }
double ref_e5m2(uint8_t c) { return reference_fp8(c, 5, 2, false); }

void expect_same(double ref, float got, int code) {
  if (std::isnan(ref)) {
    EXPECT_TRUE(std::isnan(got)) << "code 0x" << std::hex << code;
  } else {
    EXPECT_EQ(double(got), ref) << "code 0x" << std::hex << code;
    EXPECT_EQ(std::signbit(got), std::signbit(ref)) << "code 0x" << std::hex << code << " (sign of zero)";
  }
}

}  // namespace

TEST(Fp8, ReferenceAnchorsFromTheSpecification) {
  // Spot values the OCP spec lists, to make sure the reference itself is right.
  EXPECT_EQ(ref_e4m3(0x7e), 448.0);                   // E4M3 max normal S.1111.110
  EXPECT_EQ(ref_e4m3(0x08), std::ldexp(1.0, -6));     // min normal
  EXPECT_EQ(ref_e4m3(0x01), std::ldexp(1.0, -9));     // min subnormal
  EXPECT_EQ(ref_e4m3(0x07), 0.875 * std::ldexp(1.0, -6));  // max subnormal
  EXPECT_TRUE(std::isnan(ref_e4m3(0x7f)) && std::isnan(ref_e4m3(0xff)));
  EXPECT_EQ(ref_e4m3(0x78), 256.0);                   // S.1111.000 is a number in e4m3fn, not inf
  EXPECT_EQ(ref_e5m2(0x7b), 57344.0);                 // E5M2 max normal S.11110.11
  EXPECT_EQ(ref_e5m2(0x04), std::ldexp(1.0, -14));    // min normal
  EXPECT_EQ(ref_e5m2(0x01), std::ldexp(1.0, -16));    // min subnormal
  EXPECT_EQ(ref_e5m2(0x7c), INFINITY);
  EXPECT_EQ(ref_e5m2(0xfc), -INFINITY);
  EXPECT_TRUE(std::isnan(ref_e5m2(0x7d)) && std::isnan(ref_e5m2(0x7e)) && std::isnan(ref_e5m2(0x7f)));
  EXPECT_TRUE(std::signbit(ref_e4m3(0x80)) && ref_e4m3(0x80) == 0.0);
}

TEST(Fp8, AllE4M3CodesDecodeExactly) {
  int nans = 0;
  for (int c = 0; c < 256; ++c) {
    expect_same(ref_e4m3(uint8_t(c)), detail::fp8_e4m3_to_float(uint8_t(c)), c);
    nans += std::isnan(detail::fp8_e4m3_to_float(uint8_t(c)));
  }
  EXPECT_EQ(nans, 2);
}

TEST(Fp8, AllE5M2CodesDecodeExactly) {
  int nans = 0, infs = 0;
  for (int c = 0; c < 256; ++c) {
    expect_same(ref_e5m2(uint8_t(c)), detail::fp8_e5m2_to_float(uint8_t(c)), c);
    nans += std::isnan(detail::fp8_e5m2_to_float(uint8_t(c)));
    infs += std::isinf(detail::fp8_e5m2_to_float(uint8_t(c)));
  }
  EXPECT_EQ(nans, 6);
  EXPECT_EQ(infs, 2);
}

TEST(Fp8, ConvertToEveryDtypeIsExact) {
  // Every FP8 value is representable in bf16 and f16 (E4M3: 3 mantissa bits, exponents -9..8;
  // E5M2: 2 mantissa bits, exponents -16..15), so conversion must equal the reference exactly.
  std::vector<uint8_t> codes(256 * 300);  // long enough to take the parallel path
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t(i * 37 + i / 256);
  for (bool e5m2 : {false, true}) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      SCOPED_TRACE(std::string(e5m2 ? "e5m2 -> " : "e4m3 -> ") + std::string(dtype_name(dt)));
      Tensor out = Tensor::empty({int64_t(codes.size())}, dt);
      detail::convert_fp8(codes.data(), e5m2, out.raw(), dt, codes.size());
      const std::vector<float> got = out.to_floats();
      for (size_t i = 0; i < codes.size(); ++i) {
        const double ref = e5m2 ? ref_e5m2(codes[i]) : ref_e4m3(codes[i]);
        if (std::isnan(ref)) {
          ASSERT_TRUE(std::isnan(got[i])) << i;
        } else {
          ASSERT_EQ(double(got[i]), ref) << "code 0x" << std::hex << int(codes[i]);
        }
      }
    }
  }
}

TEST(Fp8, TorchWrittenCodesLoadAsTorchDecodesThem) {
  // torch_reference.safetensors (tools/reference/make_safetensors_reference.py): e4m3_all and
  // e5m2_all hold codes 0..255 as torch.float8_e4m3fn / float8_e5m2; "<name>.as_f32" is torch's
  // own .float() of them.
  const WeightStore s = WeightStore::open(test::fixtures_dir() / "safetensors_valid" / "torch_reference.safetensors");
  for (const char* name : {"e4m3_all", "e5m2_all"}) {
    SCOPED_TRACE(name);
    ASSERT_EQ(s.info(name).dtype, std::string(name) == "e4m3_all" ? FileDType::f8_e4m3 : FileDType::f8_e5m2);
    ASSERT_EQ(s.info(name).shape, Shape({256}));
    const std::vector<float> torch_values = s.load(std::string(name) + ".as_f32", DType::f32).to_floats();
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const std::vector<float> got = s.load(name, dt).to_floats();
      for (int c = 0; c < 256; ++c) {
        const double ref = std::string(name) == "e4m3_all" ? ref_e4m3(uint8_t(c)) : ref_e5m2(uint8_t(c));
        expect_same(ref, got[size_t(c)], c);
        expect_same(torch_values[size_t(c)], got[size_t(c)], c);
      }
    }
  }
}
