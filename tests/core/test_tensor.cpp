#include <cmath>
#include <cstring>
#include <limits>

#include "common/test_util.hpp"
#include "reel/tensor.hpp"

using namespace reel;

TEST(Shape, ValidatesRankDimsAndOverflow) {
  EXPECT_EQ(Shape({2, 3, 4}).numel(), 24);
  EXPECT_EQ(Shape().numel(), 1);
  EXPECT_EQ(Shape({2, 3, 4}).stride(0), 12);
  EXPECT_EQ(Shape({2, 3, 4})[-1], 4);
  EXPECT_THROW(Shape({1, 2, 3, 4, 5, 6}), Error);
  EXPECT_THROW(Shape({2, -1}), Error);
  EXPECT_THROW(Shape({int64_t(1) << 40, int64_t(1) << 40}), Error);
  EXPECT_THROW(Shape({2, 3})[2], Error);
}

TEST(Dtype, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties go to even (1.0).
  EXPECT_EQ(bf16::from_float(1.0f + 1.0f / 256).to_float(), 1.0f);
  // 1 + 3·2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even).
  EXPECT_EQ(bf16::from_float(1.0f + 3.0f / 256).to_float(), 1.0f + 1.0f / 64);
  EXPECT_EQ(bf16::from_float(1.0f + 1.0f / 256 + 1e-6f).to_float(), 1.0f + 1.0f / 128);
  EXPECT_TRUE(std::isnan(bf16::from_float(std::numeric_limits<float>::quiet_NaN()).to_float()));
  EXPECT_TRUE(std::isinf(bf16::from_float(std::numeric_limits<float>::infinity()).to_float()));
}

TEST(Dtype, F16MatchesDoubleRoundingOnRandomValues) {
  // Reference: round |x| to the f16 grid in double, ties to even, for normals and subnormals.
  auto reference = [](double x) {
    const double a = std::abs(x);
    if (a >= 65520.0) return std::copysign(INFINITY, x);
    int e;
    std::frexp(a, &e);               // a = m·2^e, m in [0.5, 1)
    int exp = std::max(e - 1, -14);  // f16 exponent, subnormals share 2^-14
    const double step = std::ldexp(1.0, exp - 10);
    double q = a / step;
    double fl = std::floor(q);
    double r = q - fl;
    if (r > 0.5 || (r == 0.5 && std::fmod(fl, 2.0) == 1.0)) fl += 1;
    return std::copysign(fl * step, x);
  };
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mant(-1, 1);
  std::uniform_int_distribution<int> ex(-26, 16);
  for (int i = 0; i < 200000; ++i) {
    const float x = float(std::ldexp(mant(rng), ex(rng)));
    ASSERT_EQ(double(f16::from_float(x).to_float()), reference(x)) << "x=" << x;
  }
}

TEST(Dtype, F16AndBf16RoundTripEveryBitPattern) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const f16 h = f16::from_bits(uint16_t(b));
    const float f = h.to_float();
    if (std::isnan(f)) continue;
    ASSERT_EQ(f16::from_float(f).bits, h.bits) << b;
    const bf16 g = bf16::from_bits(uint16_t(b));
    if (!std::isnan(g.to_float())) ASSERT_EQ(bf16::from_float(g.to_float()).bits, g.bits) << b;
  }
}

TEST(Tensor, ViewsShareTheBuffer) {
  Tensor x = test::random_tensor({3, 4, 5}, 1);
  Tensor row = x.select(1);
  EXPECT_EQ(row.shape(), Shape({4, 5}));
  EXPECT_EQ(row.data<float>(), x.data<float>() + 20);
  Tensor s = x.slice(1, 3).reshape({2, 20});
  s.data<float>()[0] = 42.0f;
  EXPECT_EQ(x.data<float>()[20], 42.0f);
  EXPECT_THROW(x.slice(2, 4), Error);
  EXPECT_THROW(x.reshape({7}), Error);
}

TEST(Tensor, ConversionsRoundTripAndCheckTypes) {
  Tensor x = test::random_tensor({1000}, 2);
  Tensor h = x.to(DType::bf16);
  const float* xf = x.data<float>();
  const bf16* hb = h.data<bf16>();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(hb[i].bits, bf16::from_float(xf[i]).bits);
  EXPECT_THROW(h.data<float>(), Error);
  Tensor back = h.to(DType::f32);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(back.data<float>()[i], hb[i].to_float());
}

TEST(Tensor, WrappedMemoryIsReadOnly) {
  auto owner = std::make_shared<std::vector<float>>(6, 1.5f);
  Tensor w = Tensor::wrap({2, 3}, DType::f32, owner, owner->data());
  EXPECT_TRUE(w.read_only());
  EXPECT_EQ(static_cast<const Tensor&>(w).data<float>()[5], 1.5f);
  EXPECT_THROW(w.data<float>(), Error);
  Tensor c = w.clone();
  EXPECT_FALSE(c.read_only());
  EXPECT_EQ(c.data<float>()[5], 1.5f);
}

TEST(Device, ParsesNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_THROW(Device::parse("gpu"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
}
