// Internal: the tiled streaming decoder (diffusers' tiled_decode, one chunk at a time).
#pragma once
#include <vector>

#include "vae/vae_model.hpp"

namespace reel::vae {

// Whether diffusers would tile latents of h×w with these settings.
bool tiling_applies(const VaeConfig& cfg, const VaeTiling& tiling, int64_t h, int64_t w);
// Throws invalid_argument for tile/stride sizes that are not multiples of the spatial factor.
void check_tiling(const VaeConfig& cfg, const VaeTiling& tiling);

// One feature cache per tile; sizes in latent pixels (tile_*) and decoded pixels before
// unpatchify (stride_*, blend_*, sample_*).
struct TiledDecoder {
  TiledDecoder(const VaeModel& m, const VaeTiling& tiling, int64_t h, int64_t w);
  // Latents [1, z, n, h, w] on the device -> CPU f32 frames [3, m, H, W], clamped.
  Tensor decode(const VaeModel& m, const Tensor& z);

  int64_t lat_h, lat_w, tile_h = 0, tile_w = 0;
  int64_t stride_h = 0, stride_w = 0, blend_h = 0, blend_w = 0, sample_h = 0, sample_w = 0;
  std::vector<int64_t> rows, cols;
  std::vector<FeatureCache> caches;  // row-major over (rows, cols)
};

}  // namespace reel::vae
