// The Wan 3-D rotary embedding tables (reel/wan.md §1.3a, diffusers WanRotaryPosEmbed): per
// token, the head dimension is split into temporal / height / width parts, each rotated by its
// own position with frequencies 10000^(−2k/n) computed in double, as diffusers does.
#include <algorithm>
#include <cmath>

#include "wan/wan_model.hpp"

namespace reel::wan {

RopeTables rope_tables(const WanConfig& config, const PatchGrid& grid) {
  const int64_t d = config.head_dim;
  const int64_t dh = 2 * (d / 6), dw = dh, dt = d - dh - dw;
  const int64_t sizes[3] = {dt, dh, dw};
  const int64_t extent[3] = {grid.frames, grid.height, grid.width};
  for (int a = 0; a < 3; ++a)
    require(extent[a] <= config.rope_max_seq_len, StatusCode::invalid_argument,
            "Wan transformer: the latent grid " + std::to_string(grid.frames) + "×" + std::to_string(grid.height) +
                "×" + std::to_string(grid.width) + " (in patches) exceeds the RoPE range of " +
                std::to_string(config.rope_max_seq_len) + " positions per axis");

  // Per axis a: cos/sin [extent, n] with each angle repeated for the two members of a pair.
  std::vector<float> axis_cos[3], axis_sin[3];
  for (int a = 0; a < 3; ++a) {
    const int64_t n = sizes[a];
    axis_cos[a].resize(size_t(extent[a] * n));
    axis_sin[a].resize(size_t(extent[a] * n));
    for (int64_t p = 0; p < extent[a]; ++p)
      for (int64_t k = 0; k < n / 2; ++k) {
        const double freq = 1.0 / std::pow(10000.0, double(2 * k) / double(n));
        const double angle = double(p) * freq;
        const float c = float(std::cos(angle)), s = float(std::sin(angle));
        axis_cos[a][size_t(p * n + 2 * k)] = axis_cos[a][size_t(p * n + 2 * k + 1)] = c;
        axis_sin[a][size_t(p * n + 2 * k)] = axis_sin[a][size_t(p * n + 2 * k + 1)] = s;
      }
  }

  RopeTables t{Tensor::empty({grid.tokens(), d}, DType::f32), Tensor::empty({grid.tokens(), d}, DType::f32)};
  float* cos = t.cos.data<float>();
  float* sin = t.sin.data<float>();
  for (int64_t f = 0; f < grid.frames; ++f)
    for (int64_t h = 0; h < grid.height; ++h)
      for (int64_t w = 0; w < grid.width; ++w) {
        const int64_t pos[3] = {f, h, w};
        const int64_t token = (f * grid.height + h) * grid.width + w;
        int64_t col = 0;
        for (int a = 0; a < 3; ++a)
          for (int64_t j = 0; j < sizes[a]; ++j, ++col) {
            cos[token * d + col] = axis_cos[a][size_t(pos[a] * sizes[a] + j)];
            sin[token * d + col] = axis_sin[a][size_t(pos[a] * sizes[a] + j)];
          }
      }
  return t;
}

RopeTables RopeCache::get(const WanConfig& config, const PatchGrid& grid, Device device) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.frames == grid.frames && e.height == grid.height && e.width == grid.width && e.device == device) {
      std::rotate(entries_.begin() + int64_t(i), entries_.begin() + int64_t(i) + 1, entries_.end());
      return entries_.back().tables;
    }
  }
  RopeTables t = rope_tables(config, grid);
  if (!(device == Device::cpu())) t = {t.cos.to(device), t.sin.to(device)};
  if (entries_.size() == kEntries) entries_.erase(entries_.begin());
  entries_.push_back({grid.frames, grid.height, grid.width, device, t});
  return t;
}

}  // namespace reel::wan
