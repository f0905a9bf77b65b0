// reel::Rng: Philox4x32-10 known answers, the normal and uniform transforms, determinism over
// thread counts and streams.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "common/test_util.hpp"
#include "reel/backend.hpp"
#include "reel/rng.hpp"

namespace reel::test {
namespace {

// Known-answer vectors of Random123 (tests/kat_vectors, the three "philox4x32 10" lines:
// counter, key, expected output), as quoted by several independent implementations.
TEST(Rng, Philox4x32_10KnownAnswers) {
  struct Kat {
    Rng::Block ctr;
    Rng::Key key;
    Rng::Block want;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const auto& k : kats) EXPECT_EQ(Rng::philox4x32_10(k.ctr, k.key), k.want);
}

// The normal transform as documented in rng.hpp, recomputed here from the raw generator.
TEST(Rng, NormalTransformIsBoxMullerOnDocumentedBits) {
  const uint64_t seed = 0x123456789abcdefull, stream = 7;
  Rng rng(seed, stream);
  std::vector<float> v(9);
  rng.fill_normal(v);
  EXPECT_EQ(rng.stream(), stream + 1);
  for (uint64_t i = 0; i < v.size(); ++i) {
    const uint64_t b = i / 2;
    const auto w = Rng::philox4x32_10({uint32_t(b), uint32_t(b >> 32), uint32_t(stream), uint32_t(stream >> 32)},
                                      {uint32_t(seed), uint32_t(seed >> 32)});
    const double u1 = double((((uint64_t(w[0]) << 32) | w[1]) >> 11) + 1) / 9007199254740992.0;
    const double u2 = double(((uint64_t(w[2]) << 32) | w[3]) >> 11) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * std::numbers::pi * u2;
    EXPECT_EQ(v[i], float(i % 2 == 0 ? r * std::cos(th) : r * std::sin(th))) << i;
    EXPECT_EQ(v[i], Rng::normal_at(seed, stream, i)) << i;
  }
}

// Moments of 2^20 normals: the standard errors are 1/√n ≈ 0.001 for the mean, √(2/n) ≈ 0.0014
// for the variance; 5 standard errors (a false alarm once in ~10^6 runs of a fixed seed: never).
TEST(Rng, NormalMoments) {
  Rng rng(2024);
  const Tensor t = rng.normal({1 << 20});
  const float* p = t.data<float>();
  double s = 0, s2 = 0, s4 = 0;
  int64_t beyond3 = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s += p[i];
    s2 += double(p[i]) * p[i];
    s4 += std::pow(double(p[i]), 4);
    beyond3 += std::abs(p[i]) > 3;
  }
  const double n = double(t.numel()), mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));  // E x^4 = 3, Var x^4 = 96
  const double p3 = 0.0026997960632601866;               // P(|x| > 3)
  EXPECT_NEAR(double(beyond3) / n, p3, 5.0 * std::sqrt(p3 / n));
}

TEST(Rng, UniformRangeAndMoments) {
  Rng rng(99);
  std::vector<float> u(1 << 18);
  rng.fill_uniform(u);
  double s = 0;
  for (float x : u) {
    ASSERT_GE(x, 0.0f);
    ASSERT_LT(x, 1.0f);
    s += x;
  }
  EXPECT_NEAR(s / double(u.size()), 0.5, 5.0 * std::sqrt(1.0 / 12.0 / double(u.size())));
}

TEST(Rng, SameSeedSameNumbersOnOneAndTwoThreads) {
  const int saved = num_threads();
  set_num_threads(1);
  Rng a(5);
  const Tensor x1 = a.normal({3, 7, 1001});  // odd length: the last pair is split
  const Tensor y1 = a.normal({5});
  set_num_threads(2);
  Rng b(5);
  const Tensor x2 = b.normal({3, 7, 1001});
  const Tensor y2 = b.normal({5});
  set_num_threads(saved);
  EXPECT_EQ(to_doubles(x1), to_doubles(x2));
  EXPECT_EQ(to_doubles(y1), to_doubles(y2));
  EXPECT_NE(to_doubles(x1)[0], to_doubles(y1)[0]);  // streams differ
}

TEST(Rng, PrefixStableAcrossSizesAndSeedsDiffer) {
  // Element i depends only on (seed, stream, i): a shorter fill is a prefix of a longer one.
  Rng a(11), b(11), c(12);
  std::vector<float> small(5), big(100), other(5);
  a.fill_normal(small);
  b.fill_normal(big);
  c.fill_normal(other);
  for (size_t i = 0; i < small.size(); ++i) EXPECT_EQ(small[i], big[i]);
  EXPECT_NE(small, other);
}

}  // namespace
}  // namespace reel::test
