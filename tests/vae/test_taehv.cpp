// TAEHV decoders (reel/taehv.hpp) against taehv.py itself: tools/reference/make_taehv_fixtures.py
// runs its decode_video() on small-width decoders of the published architecture (16 channels,
// and 48 with a 2×2 pixel shuffle), in taehv.py's three settings (full, without temporal
// upscale, at latent size). Plus the files reel must refuse, and thread invariance.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "common/test_util.hpp"
#include "reel/backend.hpp"
#include "reel/ops.hpp"
#include "reel/taehv.hpp"
#include "reel/weights.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

fs::path fixture(const std::string& name) { return fixtures_dir() / "taehv" / name; }

const WeightStore& outputs() {
  static const WeightStore store = WeightStore::open(fixture("outputs.safetensors"));
  return store;
}

struct Setting {
  const char* name;
  TaehvOptions options;
};

TEST(Taehv, MatchesTaehvPy) {
  auto be = make_cpu_backend({.threads = 2});
  const Setting settings[] = {{"full", {}},
                              {"no_time", {.time_upscale = false}},
                              {"latent_size", {.time_upscale = false, .space_upscale = false}}};
  for (const char* model : {"c16", "c48"}) {
    // taehv.py's [F, C, h, w] latents → reel's [C, F, h, w]
    const Tensor frames_first = outputs().load(std::string(model) + ".latents", DType::f32);
    const int perm[] = {1, 0, 2, 3};
    const Tensor latents = ops::permute(*be, frames_first, perm);
    for (const Setting& s : settings) {
      const TaehvDecoder dec = TaehvDecoder::load(fixture(std::string(model) + ".safetensors"), s.options);
      const Tensor want = outputs().load(std::string(model) + "." + s.name, DType::f32);
      const Tensor got = dec.decode(*be, latents);
      ASSERT_EQ(got.shape(), want.shape()) << model << " " << s.name;
      EXPECT_EQ(got.dim(0), dec.frames_for_latents(latents.dim(1)));
      EXPECT_EQ(got.dim(2), latents.dim(2) * dec.spatial_factor());
      EXPECT_EQ(dec.latent_channels(), latents.dim(0));
      const std::vector<double> g = to_doubles(got), w = to_doubles(want);
      const double e = max_abs_diff(g, w);
      std::printf("%s %s %s: max |reel - taehv.py| %.3g over %zu values\n", model, s.name,
                  got.shape().str().c_str(), e, g.size());
      EXPECT_LE(e, 2e-6) << model << " " << s.name;  // f32 convolutions summed in another order
    }
  }
}

TEST(Taehv, SameBitsOnOneAndTwoThreads) {
  const Tensor frames_first = outputs().load("c48.latents", DType::f32);
  auto one = make_cpu_backend({.threads = 1}), two = make_cpu_backend({.threads = 2});
  const int perm[] = {1, 0, 2, 3};
  const Tensor latents = ops::permute(*one, frames_first, perm);
  const TaehvDecoder dec = TaehvDecoder::load(fixture("c48.safetensors"));
  EXPECT_EQ(to_doubles(dec.decode(*one, latents)), to_doubles(dec.decode(*two, latents)));
}

TEST(Taehv, RefusesWhatItCannotRun) {
  auto be = make_cpu_backend({.threads = 2});
  const WeightStore good = WeightStore::open(fixture("c16.safetensors"));
  auto rewrite = [&](const std::string& file, const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const std::string& n : good.names()) tensors.emplace_back(n, good.load(n, DType::f32));
    edit(tensors);
    const fs::path path = tmp_dir() / file;
    save_safetensors(path, tensors);
    return path;
  };
  const fs::path super = rewrite("taehv_super.safetensors", [](auto& t) {
    t.emplace_back("decoder.0.weight", random_tensor({16, 16, 1, 1}, 1));
  });
  expect_code(StatusCode::unsupported, [&] { (void)TaehvDecoder::load(super); }, "super");
  const fs::path missing = rewrite("taehv_missing.safetensors", [](auto& t) {
    std::erase_if(t, [](const auto& kv) { return kv.first == "decoder.10.conv.2.bias"; });
  });
  expect_code(StatusCode::bad_format, [&] { (void)TaehvDecoder::load(missing); }, "decoder.10.conv.2.bias");
  const fs::path shape = rewrite("taehv_shape.safetensors", [](auto& t) {
    for (auto& [n, v] : t)
      if (n == "decoder.4.conv.0.weight") v = random_tensor({16, 16, 3, 3}, 2);  // wants [16, 32, 3, 3]
  });
  expect_code(StatusCode::bad_format, [&] { (void)TaehvDecoder::load(shape); }, "decoder.4.conv.0.weight");
  const fs::path rgb = rewrite("taehv_rgb.safetensors", [](auto& t) {
    for (auto& [n, v] : t)
      if (n == "decoder.22.weight") v = random_tensor({5, 8, 3, 3}, 3);
  });
  expect_code(StatusCode::bad_format, [&] { (void)TaehvDecoder::load(rgb); }, "3·p²");
  expect_code(StatusCode::not_found, [&] { (void)TaehvDecoder::load(tmp_dir() / "no_such_taehv.safetensors"); });

  const TaehvDecoder dec = TaehvDecoder::load(fixture("c16.safetensors"));
  expect_code(StatusCode::invalid_argument, [&] { (void)dec.decode(*be, random_tensor({48, 2, 4, 4}, 4)); }, "[16, F, h, w]");
  expect_code(StatusCode::invalid_argument, [&] { (void)dec.decode(*be, random_tensor({16, 4, 4}, 5)); }, "[16, F, h, w]");
}

}  // namespace
}  // namespace reel::test
