// Spatially tiled decoding, as diffusers' AutoencoderKLWan.tiled_decode: overlapping latent
// tiles, each with its own feature cache, decoded chunk by chunk; the decoded tiles are blended
// linearly (above, then left, in place, in row-major order), cropped to the stride and joined.
#include <algorithm>
#include <cstring>

#include "vae/vae_tiling.hpp"

namespace reel::vae {

namespace {

// diffusers' blend_v / blend_h on CPU f32 tiles [C, m, h, w]: b's first e rows (columns) become
// a's last e rows (columns) · (1 − y/e) + b's · (y/e), e = min(extent, both sizes).
void blend_above(const Tensor& a, Tensor& b, int64_t extent) {
  const int64_t c = b.dim(0) * b.dim(1), ah = a.dim(2), bh = b.dim(2), w = b.dim(3);
  const int64_t e = std::min({ah, bh, extent});
  const float* pa = a.data<float>();
  float* pb = b.data<float>();
  for (int64_t y = 0; y < e; ++y) {
    const float wa = float(1.0 - double(y) / double(e)), wb = float(double(y) / double(e));
    for (int64_t k = 0; k < c; ++k) {
      const float* ra = pa + (k * ah + ah - e + y) * w;
      float* rb = pb + (k * bh + y) * w;
      for (int64_t x = 0; x < w; ++x) rb[x] = ra[x] * wa + rb[x] * wb;
    }
  }
}

void blend_left(const Tensor& a, Tensor& b, int64_t extent) {
  const int64_t rows = b.dim(0) * b.dim(1) * b.dim(2), aw = a.dim(3), bw = b.dim(3);
  const int64_t e = std::min({aw, bw, extent});
  const float* pa = a.data<float>();
  float* pb = b.data<float>();
  for (int64_t x = 0; x < e; ++x) {
    const float wa = float(1.0 - double(x) / double(e)), wb = float(double(x) / double(e));
    for (int64_t r = 0; r < rows; ++r) pb[r * bw + x] = pa[r * aw + aw - e + x] * wa + pb[r * bw + x] * wb;
  }
}

// [C·p², m, h, w] -> [C, m, h·p, w·p], channel c·p² + qw·p + qh (§2.2), on the host.
Tensor unpatchify_host(const Tensor& x, int p) {
  if (p == 1) return x;
  const int64_t c = x.dim(0) / (int64_t(p) * p), m = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor out = Tensor::empty({c, m, h * p, w * p}, DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t ci = 0; ci < c; ++ci)
    for (int qw = 0; qw < p; ++qw)
      for (int qh = 0; qh < p; ++qh) {
        const float* s = src + (ci * p * p + qw * p + qh) * m * h * w;
        for (int64_t t = 0; t < m; ++t)
          for (int64_t y = 0; y < h; ++y)
            for (int64_t xx = 0; xx < w; ++xx)
              dst[((ci * m + t) * h * p + y * p + qh) * w * p + xx * p + qw] = s[(t * h + y) * w + xx];
      }
  return out;
}

}  // namespace

bool tiling_applies(const VaeConfig& cfg, const VaeTiling& tiling, int64_t h, int64_t w) {
  if (!tiling.enabled) return false;
  const int sf = cfg.spatial_factor();
  return w > tiling.tile_width / sf || h > tiling.tile_height / sf;
}

void check_tiling(const VaeConfig& cfg, const VaeTiling& t) {
  const int sf = cfg.spatial_factor();
  auto ok = [&](int tile, int stride, const char* axis) {
    require(stride >= sf && stride % sf == 0 && tile % sf == 0 && tile >= stride, StatusCode::invalid_argument,
            std::string("VaeTiling: ") + axis + " tile " + std::to_string(tile) + " and stride " +
                std::to_string(stride) + " must be multiples of the spatial factor " + std::to_string(sf) +
                " with tile >= stride > 0");
  };
  ok(t.tile_height, t.stride_height, "height");
  ok(t.tile_width, t.stride_width, "width");
}

TiledDecoder::TiledDecoder(const VaeModel& m, const VaeTiling& tiling, int64_t h, int64_t w) : lat_h(h), lat_w(w) {
  const VaeConfig& cfg = m.config;
  const int sf = cfg.spatial_factor(), p = cfg.patch_size;
  tile_h = tiling.tile_height / sf;
  tile_w = tiling.tile_width / sf;
  const int64_t stride_lat_h = tiling.stride_height / sf, stride_lat_w = tiling.stride_width / sf;
  // In decoded ("sample") pixels before unpatchify, as diffusers computes them.
  stride_h = tiling.stride_height / p;
  stride_w = tiling.stride_width / p;
  blend_h = tiling.tile_height / p - stride_h;
  blend_w = tiling.tile_width / p - stride_w;
  sample_h = h * sf / p;
  sample_w = w * sf / p;
  for (int64_t i = 0; i < h; i += stride_lat_h) rows.push_back(i);
  for (int64_t j = 0; j < w; j += stride_lat_w) cols.push_back(j);
  caches.resize(rows.size() * cols.size());
  for (FeatureCache& c : caches) c.reset(size_t(m.decoder.num_slots));
}

Tensor TiledDecoder::decode(const VaeModel& m, const Tensor& z) {
  Backend& be = *m.backend;
  std::vector<Tensor> tiles(caches.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    Tensor band = ops::slice(be, z, 3, rows[i], std::min(lat_h, rows[i] + tile_h));
    for (size_t j = 0; j < cols.size(); ++j) {
      Tensor tile = ops::slice(be, band, 4, cols[j], std::min(lat_w, cols[j] + tile_w));
      FeatureCache& cache = caches[i * cols.size() + j];
      tiles[i * cols.size() + j] = to_host_frames(decode_chunk(m, tile, cache, /*unpatchify=*/false), false);
      cache.first = false;
    }
  }
  const int64_t c = tiles[0].dim(0), frames = tiles[0].dim(1);
  Tensor joined = Tensor::empty({c, frames, sample_h, sample_w}, DType::f32);
  float* dst = joined.data<float>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j) {
      Tensor& tile = tiles[i * cols.size() + j];
      if (i > 0) blend_above(tiles[(i - 1) * cols.size() + j], tile, blend_h);
      if (j > 0) blend_left(tiles[i * cols.size() + j - 1], tile, blend_w);
      // Its crop [:stride_h, :stride_w] lands at (i·stride_h, j·stride_w), clipped to the frame.
      const int64_t y0 = int64_t(i) * stride_h, x0 = int64_t(j) * stride_w;
      const int64_t hh = std::min({tile.dim(2), stride_h, sample_h - y0});
      const int64_t ww = std::min({tile.dim(3), stride_w, sample_w - x0});
      if (hh <= 0 || ww <= 0) continue;
      const float* src = tile.data<float>();
      for (int64_t k = 0; k < c * frames; ++k)
        for (int64_t y = 0; y < hh; ++y)
          std::memcpy(dst + (k * sample_h + y0 + y) * sample_w + x0, src + (k * tile.dim(2) + y) * tile.dim(3),
                      size_t(ww) * sizeof(float));
    }
  tiles.clear();
  Tensor out = unpatchify_host(joined, m.config.patch_size);
  float* v = out.data<float>();
  for (int64_t k = 0; k < out.numel(); ++k) v[k] = v[k] < -1.0f ? -1.0f : (v[k] > 1.0f ? 1.0f : v[k]);
  return out;
}

}  // namespace reel::vae
