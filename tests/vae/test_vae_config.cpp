// VaeConfig presets and checks, the latent normalisation helpers (against a double-precision
// reference) and Wan 2.2's patchify / unpatchify (against the index formula of wan.md §2.2).
#include <gtest/gtest.h>

#include "vae/vae_test_util.hpp"

namespace reel::test {
namespace {

TEST(VaeConfig, Presets) {
  const VaeConfig a = VaeConfig::wan21(), b = VaeConfig::wan22();
  a.validate();
  b.validate();
  EXPECT_EQ(a.spatial_factor(), 8);
  EXPECT_EQ(b.spatial_factor(), 16);
  EXPECT_EQ(a.temporal_factor(), 4);
  EXPECT_EQ(a.frames_for_latents(21), 81);
  EXPECT_EQ(a.latents_for_frames(81), 21);
  EXPECT_EQ(a.frames_for_latents(1), 1);
  EXPECT_EQ(a.latents_mean.size(), 16u);
  EXPECT_EQ(b.latents_std.size(), 48u);
  EXPECT_FLOAT_EQ(a.latents_std[15], 1.9160f);
  EXPECT_FLOAT_EQ(b.latents_mean[47], -0.0667f);
}

TEST(VaeConfig, ValidateNamesTheField) {
  auto message = [](VaeConfig c) {
    try {
      c.validate();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::invalid_argument);
      return std::string(e.what());
    }
    return std::string();
  };
  VaeConfig c = VaeConfig::wan21();
  c.z_dim = 0;
  EXPECT_NE(message(c).find("z_dim"), std::string::npos);
  c = VaeConfig::wan21();
  c.temporal_downsample = {true};
  EXPECT_NE(message(c).find("temporal_downsample"), std::string::npos);
  c = VaeConfig::wan21();
  c.in_channels = 12;
  EXPECT_NE(message(c).find("in_channels"), std::string::npos);
  c = VaeConfig::wan22();
  c.latents_std.pop_back();
  EXPECT_NE(message(c).find("latents_std"), std::string::npos);
  c = VaeConfig::wan22();
  c.base_dim = 3;
  c.dim_mult = {1, 3, 4, 4};  // level 1's AvgDown3D: 3 -> 9 channels with factor 8, 24 % 9 != 0
  EXPECT_NE(message(c).find("AvgDown3D"), std::string::npos);
}

TEST(VaeLatents, NormalizeAndDenormalizeMatchDouble) {
  auto be = make_cpu_backend();
  for (const VaeConfig& cfg : {VaeConfig::wan21(), VaeConfig::wan22()}) {
    const int64_t c = cfg.z_dim;
    const Tensor x = random_tensor({2, c, 3, 2, 5}, 11, DType::f32, -3.0f, 3.0f);
    const Tensor n = normalize_latents(*be, x, cfg);
    const Tensor d = denormalize_latents(*be, x, cfg);
    const std::vector<double> xv = to_doubles(x);
    std::vector<double> want_n(xv.size()), want_d(xv.size());
    const int64_t inner = 3 * 2 * 5;
    for (size_t i = 0; i < xv.size(); ++i) {
      const size_t ch = size_t((int64_t(i) / inner) % c);
      want_n[i] = (xv[i] - cfg.latents_mean[ch]) / double(cfg.latents_std[ch]);
      want_d[i] = xv[i] * double(cfg.latents_std[ch]) + cfg.latents_mean[ch];
    }
    // f32 subtract-then-multiply by a rounded 1/std (diffusers' own formula): a few ulps.
    EXPECT_LE(relative_l2(to_doubles(n), want_n), 1e-6);
    EXPECT_LE(relative_l2(to_doubles(d), want_d), 1e-6);
    // Unbatched latents work too and round-trip.
    const Tensor one = x.select(1);
    const Tensor back = denormalize_latents(*be, normalize_latents(*be, one, cfg), cfg);
    EXPECT_LE(max_abs_diff(to_doubles(back), to_doubles(one)), 1e-5);
  }
  VaeConfig none = VaeConfig::wan21();
  none.latents_mean.clear();
  none.latents_std.clear();
  EXPECT_THROW(normalize_latents(*be, random_tensor({16, 1, 2, 2}, 1), none), Error);
  EXPECT_THROW(normalize_latents(*be, random_tensor({15, 1, 2, 2}, 1), VaeConfig::wan21()), Error);
}

TEST(VaePatchify, MatchesIndexFormulaAndRoundTrips) {
  auto be = make_cpu_backend();
  const int64_t t = 3, h = 6, w = 10;
  const Tensor x = random_tensor({3, t, h, w}, 21);
  const Tensor p = vae_patchify(*be, x, 2);
  ASSERT_EQ(p.shape(), Shape({12, t, h / 2, w / 2}));
  const std::vector<float> xv = x.to_floats(), pv = p.to_floats();
  // channel c·4 + qw·2 + qh holds pixel (2y + qh, 2x + qw)
  for (int64_t c = 0; c < 3; ++c)
    for (int qw = 0; qw < 2; ++qw)
      for (int qh = 0; qh < 2; ++qh)
        for (int64_t f = 0; f < t; ++f)
          for (int64_t y = 0; y < h / 2; ++y)
            for (int64_t xx = 0; xx < w / 2; ++xx) {
              const float got = pv[size_t((((c * 4 + qw * 2 + qh) * t + f) * (h / 2) + y) * (w / 2) + xx)];
              const float want = xv[size_t(((c * t + f) * h + 2 * y + qh) * w + 2 * xx + qw)];
              ASSERT_EQ(got, want);
            }
  const Tensor back = vae_unpatchify(*be, p, 2);
  EXPECT_EQ(back.shape(), x.shape());
  EXPECT_EQ(max_abs_diff(to_doubles(back), to_doubles(x)), 0.0);
  // batch-1 rank 5 too
  const Tensor p5 = vae_patchify(*be, x.reshape({1, 3, t, h, w}), 2);
  EXPECT_EQ(p5.shape(), Shape({1, 12, t, h / 2, w / 2}));
  EXPECT_THROW(vae_patchify(*be, random_tensor({3, 1, 5, 4}, 1), 2), Error);
  EXPECT_THROW(vae_unpatchify(*be, random_tensor({6, 1, 2, 2}, 1), 2), Error);
}

}  // namespace
}  // namespace reel::test
