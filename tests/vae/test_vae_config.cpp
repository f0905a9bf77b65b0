// VaeConfig presets and checks, the latent normalisation helpers (against a double-precision
// reference), Wan 2.2's patchify / unpatchify (against the index formula of wan.md §2.2), and
// a diffusers folder's config.json: a VAE whose architecture only config.json tells (against
// diffusers), and each key honoured, checked against the weights or named when refused.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "vae/vae_model.hpp"
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

// tests/fixtures/vae/custom: dim_mult [1, 2, 2], num_res_blocks 1, temperal_downsample
// [true, false] (×4 space, ×2 time), made by make_vae_fixtures.py with diffusers.
TEST(VaeConfigJson, BuildsTheArchitectureConfigJsonDescribes) {
  std::vector<std::string> notes;
  const VaeConfig c = vae::read_vae_config(vae_fixture("custom"), &notes);
  EXPECT_EQ(c.dim_mult, (std::vector<int>{1, 2, 2}));
  EXPECT_EQ(c.num_res_blocks, 1);
  EXPECT_EQ(c.spatial_factor(), 4);
  EXPECT_EQ(c.temporal_factor(), 2);
  // Its scale_factor_* keys are diffusers' defaults, not this architecture's: said, not used.
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("scale_factor_temporal 4"), std::string::npos) << notes[0];

  auto be = make_cpu_backend();
  const WanVae vae = WanVae::load(vae_fixture("custom"), *be);  // reads config.json itself
  const WeightStore io = WeightStore::open(vae_fixture("custom_io.safetensors"));
  const Tensor z = io.load("latents", DType::f32), ref = io.load("decoded", DType::f32);
  const Tensor out = vae.decode(z.reshape({z.dim(1), z.dim(2), z.dim(3), z.dim(4)}));
  ASSERT_EQ(out.shape(), Shape({3, 7, 16, 24}));
  const double err = relative_l2(to_doubles(out), to_doubles(ref));
  std::printf("custom VAE decode vs diffusers: relative L2 %.3g\n", err);
  EXPECT_LE(err, 1e-4);
  const Tensor video = io.load("video", DType::f32), moments = io.load("moments", DType::f32);
  const Tensor mu = vae.encode(video.reshape({3, 13, 16, 24}));
  const Tensor want_mu = ops::slice(*be, moments, 1, 0, 4);  // the mean half of [mean, logvar]
  const double err_mu = relative_l2(to_doubles(mu), to_doubles(want_mu));
  std::printf("custom VAE encode vs diffusers: relative L2 %.3g\n", err_mu);
  EXPECT_LE(err_mu, 1e-4);
}

TEST(VaeConfigJson, EachKeyIsHonouredCheckedOrRefusedByName) {
  const std::filesystem::path d = tmp_dir() / "vae_config_json";
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  std::filesystem::copy(vae_fixture("custom"), d / "vae");
  const nlohmann::json original = nlohmann::json::parse(std::ifstream(vae_fixture("custom") / "config.json"));
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = original;
    if (value.is_discarded()) j.erase(key);
    else j[key] = value;
    std::ofstream(d / "vae" / "config.json") << j.dump();
  };
  auto expect = [&](StatusCode code, const std::string& needle) {
    const auto read = [&] { (void)vae::read_vae_config(d / "vae"); };
    expect_code(code, read, needle);
    std::string message;
    (void)code_of(read, &message);
    EXPECT_NE(message.find("config.json"), std::string::npos) << message;  // names the file
  };
  with("base_dim", 8);
  expect(StatusCode::bad_format, "'base_dim' is 8 but the weights have 4");
  with("z_dim", 16);
  expect(StatusCode::bad_format, "'z_dim' is 16");
  with("is_residual", true);
  expect(StatusCode::bad_format, "'is_residual'");
  with("attn_scales", nlohmann::json::array({0.5}));
  expect(StatusCode::unsupported, "'attn_scales'");
  with("_class_name", "AutoencoderKL");
  expect(StatusCode::unsupported, "'_class_name'");
  with("dim_mult", "wide");
  expect(StatusCode::bad_format, "'dim_mult'");
  with("latents_std", nlohmann::json::array({1.0, 2.0}));
  expect(StatusCode::bad_format, "'latents_std'");
  // Left out: diffusers' defaults, which do not fit these weights — said by the loader, which
  // names the tensor and the config it expected.
  with("num_res_blocks", nlohmann::json::value_t::discarded);
  const VaeConfig defaults = vae::read_vae_config(d / "vae");
  EXPECT_EQ(defaults.num_res_blocks, 2);
  auto be = make_cpu_backend();
  expect_code(StatusCode::not_found, [&] { (void)WanVae::load(d / "vae", *be); }, "num_res_blocks 2");
  // A key AutoencoderKLWan does not have is a note, as diffusers ignores it.
  with("sparkle", 1);
  std::vector<std::string> notes;
  (void)vae::read_vae_config(d / "vae", &notes);
  bool named = false;
  for (const std::string& n : notes) named = named || n.find("'sparkle'") != std::string::npos;
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace reel::test
