// Helpers for the VAE tests: the fixtures of tools/reference/make_vae_fixtures.py (tiny
// random-weight diffusers AutoencoderKLWan models, Wan 2.1 and Wan 2.2 style) and comparisons.
#pragma once
#include <string>

#include "common/test_util.hpp"
#include "reel/ops.hpp"
#include "reel/vae.hpp"
#include "reel/weights.hpp"

namespace reel::test {

struct VaeFixture {
  std::string tag;   // "wan21" or "wan22"
  int64_t height, width;
};

inline const VaeFixture kWan21{"wan21", 24, 40};
inline const VaeFixture kWan22{"wan22", 32, 48};

inline std::filesystem::path vae_fixture(const std::string& file) { return fixtures_dir() / "vae" / file; }
inline std::filesystem::path vae_weights_diffusers(const VaeFixture& f) {
  return vae_fixture(f.tag + "_diffusers_bf16.safetensors");
}
inline std::filesystem::path vae_weights_original(const VaeFixture& f) {
  return vae_fixture(f.tag + "_original_f16.safetensors");
}
// "video" [1,3,13,H,W] (bf16), "moments" [1,2z,4,h,w], "latents" [1,z,4,h,w], "decoded"
// [1,3,13,H,W], "tiled_decoded" [1,3,5,H,W] (the first 2 latent frames, tiled); the tiling
// settings are in the file's metadata.
inline WeightStore vae_io(const VaeFixture& f) { return WeightStore::open(vae_fixture(f.tag + "_io.safetensors")); }

// Frames [begin, end) of dimension `axis` of a CPU tensor, as doubles.
inline std::vector<double> frames_range(const Tensor& t, int axis, int64_t begin, int64_t end) {
  const std::vector<float> v = t.to_floats();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= t.dim(i);
  for (int i = axis + 1; i < t.rank(); ++i) inner *= t.dim(i);
  const int64_t n = t.dim(axis);
  std::vector<double> out;
  out.reserve(size_t(outer * (end - begin) * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = begin; k < end; ++k)
      for (int64_t i = 0; i < inner; ++i) out.push_back(v[size_t((o * n + k) * inner + i)]);
  return out;
}

}  // namespace reel::test
